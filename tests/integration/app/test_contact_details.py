"""Contact details beside a customer list go through the policy and the access log: staff read
their own customers' (and the unowned pool's), analysts none, an auditor without the PII grant a
mask; every read in clear is logged with its purpose, and nothing else is. On SQLite and
PostgreSQL, with the population of tests/helpers/campaign_population.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_es import CRM
from crm_es.app.contact_details import ContactDetails, contact_details
from crm_es.domain.principals import Principal, Role
from crm_es.domain.values import ERASED
from crm_es.reports import Reports
from tests.helpers.campaign_population import AS_OF, build_population, cid
from tests.helpers.stores import module_store

STAFF_LI = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
ANALYST = Principal(name="user:ana", roles=frozenset({Role.ANALYST}))
AUDITOR = Principal(name="user:audit", roles=frozenset({Role.AUDITOR}))
ADMIN = Principal(name="user:root", roles=frozenset({Role.ADMIN}))
EVERYONE = [cid(ref) for ref in "ABCDEFGH"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with module_store(request, tmp_path_factory) as store_url:
        with CRM(store_url) as crm:
            build_population(crm)
        yield store_url


def _reads(crm: CRM, principal: str) -> list[tuple[str, str, tuple[str, ...], str | None]]:
    return [
        (e.customer_id, e.action, tuple(e.fields), e.purpose)
        for e in crm.store.access_log.entries(by=principal)
    ]


def test_staff_read_their_own_and_the_pools_contact_details_only(url: str) -> None:
    with CRM(url, principal=STAFF_LI) as crm:
        with Reports(crm) as reports:  # the list itself is a report staff may run: no PII
            listed = reports.customer_list(as_of=AS_OF)
        ids = [c.customer_id for c in listed.customers]
        assert ids == EVERYONE
        found = contact_details(crm, ids, purpose="campaign summer")
        reads = _reads(crm, "user:li")
    assert sorted(found.details) == sorted(cid(ref) for ref in "ABCGH")  # G has no owner
    assert found.details[cid("A")] == ContactDetails("Name A", "a@example.com", "+86 138 0000 0001")
    assert found.withheld == 3  # D, E, F are staff:wang's
    assert found.withheld_why is not None and "staff:wang" in found.withheld_why
    assert sorted(reads) == sorted(
        (cid(ref), "list", ("name", "email", "phone"), "campaign summer") for ref in "ABCGH"
    )


def test_an_analyst_reads_no_contact_details_and_nothing_is_logged(url: str) -> None:
    with CRM(url, principal=ANALYST) as crm:
        found = contact_details(crm, EVERYONE, purpose="campaign summer")
        assert (found.details, found.withheld) == ({}, 8)
        assert _reads(crm, "user:ana") == []


def test_an_auditor_without_the_pii_grant_reads_a_mask_and_nothing_is_logged(url: str) -> None:
    with CRM(url, principal=AUDITOR) as crm:
        found = contact_details(crm, [cid("A")])
        assert found.details[cid("A")] == ContactDetails("[masked]", "[masked]", "[masked]")
        assert _reads(crm, "user:audit") == []


def test_an_erased_customers_details_read_erased_and_are_not_logged(url: str) -> None:
    with CRM(url, principal=ADMIN) as crm:
        found = contact_details(crm, [cid("E"), cid("F"), cid("E")], purpose="check")
        assert found.details[cid("E")] == ContactDetails(ERASED, ERASED, ERASED)
        assert found.details[cid("F")].email == "f@example.com"
        assert [r[0] for r in _reads(crm, "user:root")] == [cid("F")]


@pytest.mark.parametrize("principal", [STAFF_LI, ANALYST], ids=["staff", "analyst"])
def test_a_tag_is_personal_data_so_only_whoever_reads_every_customers_selects_by_it(
    url: str, principal: Principal
) -> None:
    """Tags are personal (a free text, encrypted, erased): a list selected by a tag would tell
    an analyst, or staff:li about staff:wang's E, who carries it."""
    from crm_es.domain.errors import PermissionDenied
    from crm_es.reports.facts.customer_selection import ListFilters

    vip = ListFilters(tag=("vip",))
    with CRM(url, principal=principal) as crm, Reports(crm) as reports:
        for select in (reports.customer_list, reports.customer_summary):
            with pytest.raises(PermissionDenied, match="tags are personal data"):
                select(vip, as_of=AS_OF)
        with pytest.raises(PermissionDenied, match="tags are personal data"):
            reports.campaign_export("summer", vip, as_of=AS_OF)
        assert reports.customer_list(ListFilters(region=("华东",)), as_of=AS_OF).total == 4
    with CRM(url, principal=ADMIN) as crm, Reports(crm) as reports:
        listed = reports.customer_list(vip, as_of=AS_OF)
    assert [c.external_ref for c in listed.customers] == ["A", "C"]  # E was erased
