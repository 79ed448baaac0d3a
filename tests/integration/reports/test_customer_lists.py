"""Customer lists, campaign exports and the category summary on a known population (see
tests/helpers/campaign_population.py for every figure by hand), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crm_es import CRM
from crm_es.domain.errors import InvalidValue
from crm_es.reports import Reports
from crm_es.reports.customer_list import CustomerList, left_out_line
from crm_es.reports.facts.customer_selection import ListFilters
from tests.helpers.campaign_population import AS_OF, PAST, Population, build_population, cid
from tests.helpers.stores import module_store


class World:
    def __init__(self, crm: CRM, reports: Reports, population: Population) -> None:
        self.crm, self.reports, self.population = crm, reports, population

    def refs(self, as_of: str = AS_OF, **filters: Any) -> list[str | None]:
        listed = self.reports.customer_list(ListFilters(**filters), as_of=as_of)
        return [c.external_ref for c in listed.customers]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with module_store(request, tmp_path_factory) as url, CRM(url) as crm:
        population = build_population(crm)
        with Reports(crm) as reports:
            yield World(crm, reports, population)


def test_every_customer_present_is_listed_sorted_by_ref_without_personal_data(
    world: World,
) -> None:
    listed = world.reports.customer_list(as_of=AS_OF)
    assert [c.external_ref for c in listed.customers] == list("ABCDEFGH")
    assert (listed.present, listed.total) == (8, 8)
    a = listed.customers[0]
    assert a.customer_id == cid("A")
    fields = set(type(a).__struct_fields__)
    assert not fields & {"name", "email", "phone", "birthday", "tags"}


def test_one_row_holds_the_values_as_of_the_date(world: World) -> None:
    rows = {c.external_ref: c for c in world.reports.customer_list(as_of=AS_OF).customers}
    a, b, c, e, g = rows["A"], rows["B"], rows["C"], rows["E"], rows["G"]
    assert (a.owner, a.region, a.industry, a.category, a.company_size, a.income_band) == (
        "staff:li", "华东", "零售", "signed", "50-199", "20k+"
    )  # fmt: skip
    assert (a.tier, a.lifecycle, a.segment, a.segment_cn, a.churn_status, a.consent) == (
        "gold", "loyal", "Champions", "重要价值客户", "active", "given"
    )  # fmt: skip
    assert a.last_contact_on == "2025-06-20" and not a.erased
    assert b.region == "华东"  # moved to 华北 only on 2025-08-01
    assert (c.segment, c.segment_cn, c.churn_status, c.lifecycle) == (
        "Need Attention", "一般挽留客户", "at_risk", "repeat"
    )  # fmt: skip
    assert c.last_contact_on is None and c.consent == "none"
    assert e.erased and e.consent == "given"
    assert (g.owner, g.region, g.industry, g.segment) == ("(unassigned)", "(none)", "(none)", None)
    assert g.last_contact_on is None  # its contact of 2025-07-05 is after the date


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"segment": ("Champions",)}, "A"),
        ({"segment": ("Loyal Customers",)}, "B"),
        ({"segment": ("Hibernating",)}, "DE"),
        ({"segment": ("重要价值客户",)}, "AB"),
        ({"segment": ("一般挽留客户",)}, "CDE"),
        ({"lifecycle": ("loyal",)}, "AB"),
        ({"lifecycle": ("repeat",)}, "C"),
        ({"lifecycle": ("churned",)}, "DE"),
        ({"lifecycle": ("prospect",)}, "FGH"),
        ({"tag": ("vip",)}, "AC"),  # E's tags went with its erasure
        ({"tag": ("wholesale",)}, "CF"),
        ({"tag": ("vip", "wholesale")}, "ACF"),
        ({"region": ("华东",)}, "ABEH"),
        ({"region": ("(none)",)}, "G"),
        ({"region": ("华东", "华南")}, "ABCEFH"),
        ({"industry": ("教育",)}, "FH"),
        ({"industry": ("(none)",)}, "DG"),
        ({"category": ("signed",)}, "ABCDE"),
        ({"category": ("partner",)}, "G"),
        ({"owner": ("staff:wang",)}, "DEF"),
        ({"owner": ("(unassigned)",)}, "G"),
        ({"tier": ("gold",)}, "A"),
        ({"tier": ("silver",)}, "B"),
        ({"tier": ("standard",)}, "CDEFGH"),
        ({"consent": ("given",)}, "AEFGH"),
        ({"consent": ("withdrawn",)}, "B"),
        ({"consent": ("none",)}, "CD"),
        ({"consent": ("not_given",)}, "BCD"),
        ({"churn_status": ("active",)}, "AB"),
        ({"churn_status": ("at_risk",)}, "C"),
        ({"churn_status": ("churned",)}, "DE"),
        ({"churn_status": ("prospect",)}, "FGH"),
        ({"last_contact_before": "2025-01-01"}, "CDEGH"),  # H: 2024-12-31 23:00
        ({"last_contact_before": "2024-12-31T23:00:00+00:00"}, "CDEG"),
        ({"owner": ("staff:li",), "consent": ("given",), "region": ("华东",)}, "AH"),
        ({"tier": ("standard",), "churn_status": ("churned",), "region": ("华东",)}, "E"),
        ({"tag": ("vip",), "lifecycle": ("loyal",)}, "A"),
        ({"region": ("华南",), "consent": ("given",), "lifecycle": ("prospect",)}, "F"),
    ],
)
def test_each_filter_and_combination_selects_the_customers_worked_out_by_hand(
    world: World, filters: dict[str, Any], expected: str
) -> None:
    assert world.refs(**filters) == list(expected)


def test_a_list_as_of_a_past_date_uses_the_values_of_then(world: World) -> None:
    assert world.refs(as_of=PAST) == list("ABCDEFH")  # G registered 2025-02-01
    assert world.refs(as_of=PAST, consent=("given",)) == list("ABEF")
    # A, B and C first bought in 2025: prospects then. E had been silent 274 days (> 270),
    # D 213 (> 135: at risk).
    assert world.refs(as_of=PAST, lifecycle=("prospect",)) == list("ABCFH")
    assert world.refs(as_of=PAST, churn_status=("churned",)) == ["E"]
    assert world.refs(as_of=PAST, churn_status=("at_risk",)) == ["D"]
    assert world.refs(as_of="2025-09-30", region=("华北",)) == list("BD")


def test_a_list_known_at_an_earlier_time_does_not_see_what_was_recorded_after_it(
    world: World,
) -> None:
    before = world.reports.customer_list(
        ListFilters(consent=("given",)), as_of=AS_OF, known_at=world.population.before_h
    )
    assert [c.external_ref for c in before.customers] == list("AEFG")


def test_a_value_outside_a_closed_vocabulary_is_refused(world: World) -> None:
    for filters in (
        ListFilters(segment=("Champion",)),
        ListFilters(lifecycle=("dormant",)),
        ListFilters(tier=("bronze",)),
        ListFilters(consent=("yes",)),
        ListFilters(churn_status=("lost",)),
        ListFilters(category=("vip",)),
    ):
        with pytest.raises(InvalidValue):
            world.reports.customer_list(filters, as_of=AS_OF)
    with pytest.raises(InvalidValue, match="last_contact_before"):
        world.reports.customer_list(ListFilters(last_contact_before="last week"), as_of=AS_OF)


def test_a_campaign_export_keeps_only_consenting_customers_and_counts_the_rest_by_reason(
    world: World,
) -> None:
    export = world.reports.campaign_export("summer", as_of=AS_OF)
    assert [c.external_ref for c in export.customers] == list("AGH")
    assert (export.matched, export.exported) == (8, 3)
    assert export.left_out == {
        "erased": 1, "no_consent": 2, "consent_withdrawn": 1, "consent_withdrawn_since": 1
    }  # fmt: skip
    assert left_out_line(export) == (
        "campaign summer: exported 3 of 8 matching customers; left out 1 erased, 2 without "
        "marketing consent, 1 who had withdrawn consent, 1 who withdrew consent since"
    )


def test_an_export_as_of_a_past_date_never_reaches_who_withdrew_consent_since(
    world: World,
) -> None:
    export = world.reports.campaign_export("winter", as_of=PAST)
    assert [c.external_ref for c in export.customers] == ["A"]
    assert export.left_out == {
        "erased": 1, "no_consent": 3, "consent_withdrawn": 0, "consent_withdrawn_since": 2
    }  # fmt: skip


def test_an_export_applies_the_filters_before_consent(world: World) -> None:
    export = world.reports.campaign_export(
        "east", ListFilters(region=("华东",), owner=("staff:li",)), as_of=AS_OF
    )
    assert [c.external_ref for c in export.customers] == list("AH")
    assert export.matched == 3 and export.left_out["consent_withdrawn"] == 1  # B


def test_a_campaign_needs_a_printable_name(world: World) -> None:
    for name in ("", "  ", "a\nb", "x" * 101):
        with pytest.raises(InvalidValue, match="campaign"):
            world.reports.campaign_export(name, as_of=AS_OF)


def test_the_summary_counts_customers_per_value_of_each_attribute(world: World) -> None:
    summary = world.reports.customer_summary(as_of=AS_OF)
    assert summary.total == 8
    by = {name: [(v.value, v.customers, v.share) for v in values]
          for name, values in summary.by.items()}  # fmt: skip
    assert by == {
        "category": [("signed", 5, 62.5), ("potential", 2, 25.0), ("partner", 1, 12.5)],
        "region": [("华东", 4, 50.0), ("华南", 2, 25.0), ("(none)", 1, 12.5), ("华北", 1, 12.5)],
        "industry": [("零售", 3, 37.5), ("(none)", 2, 25.0), ("教育", 2, 25.0),
                     ("制造业", 1, 12.5)],
        "company_size": [("(none)", 5, 62.5), ("10-49", 2, 25.0), ("50-199", 1, 12.5)],
        "income_band": [("(none)", 6, 75.0), ("10k-20k", 1, 12.5), ("20k+", 1, 12.5)],
    }  # fmt: skip


def test_the_summary_of_a_selection_adds_up_to_its_list(world: World) -> None:
    filters = ListFilters(owner=("staff:li",))
    summary = world.reports.customer_summary(filters, as_of=AS_OF)
    listed: CustomerList = world.reports.customer_list(filters, as_of=AS_OF)
    assert summary.total == listed.total == 4
    assert [(v.value, v.customers) for v in summary.by["region"]] == [("华东", 3), ("华南", 1)]
    for values in summary.by.values():
        assert sum(v.customers for v in values) == summary.total


def test_the_segment_filter_lists_the_segments_reports_customers(world: World) -> None:
    """One definition: the list's Champions are the segments report's, and its at-risk
    customers the churn report's."""
    seg = world.reports.segments(as_of=AS_OF)
    champions = sorted(c.external_ref or "" for c in seg.customers if c.segment == "Champions")
    assert world.refs(segment=("Champions",)) == champions
    churn = world.reports.churn(as_of=AS_OF)
    at_risk = sorted(c.external_ref or "" for c in churn.customers if c.status == "at_risk")
    assert world.refs(churn_status=("at_risk",)) == at_risk
