"""Finding customers by phone or email through the contact index, on SQLite and PostgreSQL: every
way in feeds it, a changed phone stops matching from its change on, duplicates are grouped, and
an erased customer is neither found nor left as a hash in the store's bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm_es import CRM
from crm_es.app.importer import import_csv
from crm_es.audit.export import export_history
from crm_es.audit.importer import import_history
from crm_es.domain.contact_keys import contact_hash
from crm_es.domain.errors import InvalidValue, PermissionDenied
from crm_es.domain.principals import Principal, Role
from crm_es.projections.engine import ProjectionEngine
from crm_es.projections.models import read_models
from crm_es.reports import Reports
from tests.helpers.raw_bytes import store_bytes

PHONE, EMAIL = "+86 139 1234 5678", "Nana.Ouyang@Example.org"


def _refs(crm: CRM, **asked: str) -> list[str | None]:
    with Reports(crm) as reports:
        return [c.external_ref for c in reports.find_customers(**asked).customers]


def by_api(url: str, _: Path) -> None:
    with CRM(url) as crm:
        crm.register_customer(external_ref="C-1", phone=PHONE, email=EMAIL, category="signed")


def by_csv_import(url: str, tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text(f"external_ref,phone,email,category\nC-1,{PHONE},{EMAIL},signed\n", "utf-8")
    with CRM(url) as crm:
        assert import_csv(crm, csv, "customers").stored == 1


def by_audit_import(url: str, tmp_path: Path) -> None:
    source, export = f"sqlite:///{tmp_path / 'source.db'}", tmp_path / "export.jsonl"
    with CRM(source) as crm, export.open("wb") as f:
        crm.register_customer(external_ref="C-1", phone=PHONE, email=EMAIL, category="signed")
        export_history(crm, f.write)
    with CRM(url) as crm:
        import_history(crm, export)


WAYS_IN: dict[str, Callable[[str, Path], None]] = {
    "api": by_api,
    "csv_import": by_csv_import,
    "audit_import": by_audit_import,
}


@pytest.mark.parametrize("way", list(WAYS_IN))
def test_every_way_in_makes_a_customer_findable_by_any_spelling_of_its_phone_and_email(
    way: str, store_url: str, tmp_path: Path
) -> None:
    WAYS_IN[way](store_url, tmp_path)
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="OTHER", phone="13800000000", email="x@example.org")
        with Reports(crm) as reports:
            found = reports.find_customers(phone="0086 (139) 1234-5678")
        assert found.by == "phone" and found.total == 1
        [one] = found.customers
        assert (one.external_ref, one.category, one.owner) == ("C-1", "signed", "(unassigned)")
        assert _refs(crm, phone="13912345678") == ["C-1"]
        assert _refs(crm, email="  nana.ouyang@EXAMPLE.ORG") == ["C-1"]
        assert _refs(crm, phone="13912345679") == []


def test_a_changed_phone_matches_the_new_number_from_its_change_on_and_the_old_until_then(
    store_url: str,
) -> None:
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", phone="13900000001", occurred_at=start)
        crm.update_profile(customer="C-1", phone="13900000002", occurred_at=start + timedelta(30))
        crm.update_profile(customer="C-1", email="a@example.org", occurred_at=start + timedelta(40))
        crm.update_profile(customer="C-1", phone=None, occurred_at=start + timedelta(50))
        with Reports(crm) as reports:

            def refs(phone: str, days: int) -> list[str | None]:
                at = start + timedelta(days)
                found = reports.find_customers(phone=phone, as_of=at)
                return [c.external_ref for c in found.customers]

            assert refs("13900000001", 29) == ["C-1"] and refs("13900000002", 29) == []
            assert refs("13900000001", 30) == [] and refs("13900000002", 30) == ["C-1"]
            assert refs("13900000002", 45) == ["C-1"]  # an email change leaves the phone alone
            assert refs("13900000002", 50) == [] and refs("13900000001", 50) == []
            # Known at a moment before the change was recorded: the old number still matches.
            registered = next(iter(crm.history("C-1"))).recorded_at
            before = reports.find_customers(phone="13900000001", as_of=start + timedelta(60),
                                            known_at=registered)  # fmt: skip
            assert [c.external_ref for c in before.customers] == ["C-1"]


def test_customers_sharing_a_phone_or_an_email_are_grouped_largest_first(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="A", phone="+86 138 0000 0000", email="a@x.org")
        crm.register_customer(external_ref="B", phone="13800000000", email="A@X.org ")
        crm.register_customer(external_ref="C", phone="0086 13800000000", owner="staff:li")
        crm.register_customer(external_ref="D", phone="13800000001", email="d@x.org")
        crm.register_customer(external_ref="E", phone="13800000002")
        crm.update_profile(customer="E", phone="13800000001")  # now shares D's
        crm.register_customer(external_ref="F", email="f@x.org")
        crm.update_profile(customer="F", email="d@x.org")
        crm.update_profile(customer="F", email="f2@x.org")  # shared D's only for a while
        with Reports(crm) as reports:
            dupes = reports.duplicate_customers()
    shown = [(g.group, g.by, g.size, [c.external_ref for c in g.customers]) for g in dupes.groups]
    assert shown == [
        (1, "phone", 3, ["A", "B", "C"]),
        (2, "phone", 2, ["D", "E"]),  # then phones before emails
        (3, "email", 2, ["A", "B"]),
    ]
    assert dupes.customers == 5
    assert dupes.groups[0].customers[2].owner == "staff:li"


def test_an_erased_customer_is_not_found_and_its_hashes_leave_the_store_bytes(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", phone=PHONE, email=EMAIL)
        crm.register_customer(external_ref="C-2", phone=PHONE)
        key = crm.store.secrets.contact_index_key
        hashes = [
            contact_hash(key, "phone", "13912345678").encode(),
            contact_hash(key, "email", EMAIL.lower()).encode(),
        ]
        assert _refs(crm, phone=PHONE) == ["C-1", "C-2"]  # the index holds them now
        raw = store_bytes(store_url)
        assert all(h in raw for h in hashes)  # so the scan below can fail
        assert b"13912345678" not in raw and b"1234 5678" not in raw  # never the value
        crm.erase_personal_data(customer="C-1", requested_by="customer")
        with Reports(crm) as reports:
            assert reports.duplicate_customers().groups == []
            found = reports.find_customers(phone=PHONE)
        assert [c.external_ref for c in found.customers] == ["C-2"]
        assert _refs(crm, email=EMAIL) == []
        crm.erase_personal_data(customer="C-2", requested_by="customer")
        assert _refs(crm, phone=PHONE) == []
        engine = ProjectionEngine(crm, read_models())
        try:
            engine.rebuild("contact_index")  # a rebuild after the erasure keeps none either
        finally:
            engine.close()
        assert _refs(crm, phone=PHONE) == []
    raw = store_bytes(store_url)
    assert not [h for h in hashes if h in raw]


def test_finding_says_what_is_wrong_and_who_may_not_find(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", phone=PHONE)
        with Reports(crm) as reports:
            with pytest.raises(InvalidValue, match="one of them"):
                reports.find_customers()
            with pytest.raises(InvalidValue, match="one of them"):
                reports.find_customers(phone=PHONE, email=EMAIL)
            with pytest.raises(InvalidValue, match="digits"):
                reports.find_customers(phone="call me")
    analyst = Principal(name="user:ana", roles=frozenset({Role.ANALYST}))
    with CRM(store_url, principal=analyst) as crm, Reports(crm) as reports:
        with pytest.raises(PermissionDenied, match="phones are personal data"):
            reports.find_customers(phone=PHONE)
        with pytest.raises(PermissionDenied):
            reports.duplicate_customers()


def test_no_two_read_models_name_a_table_alike() -> None:
    """Reports see every read model's tables under their logical names in one map: a name
    two models share would hide one of the tables (the contact index once hid the contacts')."""
    names = [table for model in read_models() for table in model.tables]
    assert len(names) == len(set(names))


def test_staff_find_among_the_customers_they_work_on_and_learn_nothing_of_the_others(
    store_url: str,
) -> None:
    with CRM(store_url) as crm:  # one phone on three customers: mine, the pool's, someone else's
        crm.register_customer(external_ref="MINE", phone=PHONE, owner="staff:li")
        crm.register_customer(external_ref="POOL", phone=PHONE)
        crm.register_customer(external_ref="THEIRS", phone=PHONE, owner="staff:wu")
        with Reports(crm) as reports:
            everyone = reports.find_customers(phone=PHONE)
    assert [c.external_ref for c in everyone.customers] == ["MINE", "POOL", "THEIRS"]
    li = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
    with CRM(store_url, principal=li) as crm, Reports(crm) as reports:
        found = reports.find_customers(phone=PHONE)
        assert ([c.external_ref for c in found.customers], found.total) == (["MINE", "POOL"], 2)
        with pytest.raises(PermissionDenied):  # groups would say who else holds a number
            reports.duplicate_customers()
    wu_boss = Principal(name="user:boss", roles=frozenset({Role.MANAGER}), owner="staff:boss",
                        team=frozenset({"staff:wu"}))  # fmt: skip
    with CRM(store_url, principal=wu_boss) as crm, Reports(crm) as reports:
        found = reports.find_customers(phone=PHONE)
        assert [c.external_ref for c in found.customers] == ["POOL", "THEIRS"]
