"""``crm-es customers list|export|summary`` on the population of
tests/helpers/campaign_population.py, on SQLite and PostgreSQL: formats, filters, what goes to
stderr, contact details only when asked for (and logged), mistakes as errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from crm_es import CRM
from tests.helpers.campaign_population import AS_OF, build_population, cid
from tests.helpers.cli import run
from tests.helpers.stores import module_store


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with module_store(request, tmp_path_factory) as store_url:
        with CRM(store_url) as crm:
            build_population(crm)
        yield store_url


def _ok(url: str, *args: str) -> tuple[str, str]:
    code, out, err = run(url, "customers", *args, "--as-of", AS_OF)
    assert code == 0, err
    return out, err


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_list_as_json_holds_the_query_the_filters_and_the_customers(url: str) -> None:
    out, err = _ok(url, "list", "--region", "华东", "--region", "华南", "--consent", "given")
    data = json.loads(out)
    assert [c["external_ref"] for c in data["customers"]] == list("AEFH")
    assert data["filters"] == {"region": ["华东", "华南"], "consent": ["given"]}
    assert (data["present"], data["total"]) == (8, 4)
    assert data["as_of"].startswith("2025-06-30T23:59:59")
    assert "name" not in data["customers"][0] and "contact" not in data["customers"][0]
    assert err == ""


def test_list_as_csv_has_one_row_per_customer_and_every_column(url: str) -> None:
    out, _ = _ok(url, "list", "--format", "csv", "--lifecycle", "loyal")
    rows = _csv(out)
    assert [r["external_ref"] for r in rows] == ["A", "B"]
    assert rows[0]["customer_id"] == cid("A")
    assert (rows[0]["segment"], rows[0]["tier"], rows[0]["last_contact_on"]) == (
        "Champions", "gold", "2025-06-20"
    )  # fmt: skip
    assert "name" not in rows[0]


def test_list_as_a_table_says_how_many_of_how_many(url: str) -> None:
    out, _ = _ok(url, "list", "--format", "table", "--owner", "staff:li")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["external_ref", "owner", "lifecycle"]
    assert [line.split()[0] for line in lines[2:6]] == list("ABCH")
    assert lines[-1] == "(4 of 8 customers)"
    out, _ = _ok(url, "list", "--format", "table", "--limit", "2", "--columns", "external_ref")
    assert out.splitlines()[2:] == ["A", "B", "(2 of 8 customers: --limit 0 shows all)"]


def test_contact_details_are_shown_only_when_asked_and_the_read_is_logged(url: str) -> None:
    out, err = _ok(url, "list", "--tag", "vip", "--with-contact-details", "--purpose", "ring")
    rows = json.loads(out)["customers"]
    assert [r["contact"] for r in rows] == [
        {"name": "Name A", "email": "a@example.com", "phone": "+86 138 0000 0001"},
        {"name": "Name C", "email": "c@example.com", "phone": "+86 138 0000 0003"},
    ]
    assert err == ""  # the command line's principal may read every customer
    with CRM(url) as crm:
        purposes = {(e.customer_id, e.purpose) for e in crm.store.access_log.entries()}
    assert {(cid("A"), "ring"), (cid("C"), "ring")} <= purposes
    out, _ = _ok(url, "list", "--tag", "vip", "--with-contact-details", "--format", "csv")
    assert [(r["external_ref"], r["name"], r["email"]) for r in _csv(out)] == [
        ("A", "Name A", "a@example.com"), ("C", "Name C", "c@example.com")
    ]  # fmt: skip


def test_only_the_contact_details_shown_are_read_and_logged(url: str) -> None:
    """A list cut by --limit (or a table's 50 rows) reads the details of the rows it shows:
    the access log must not say that someone read customers they never saw."""
    for fmt in ("json", "table"):
        purpose = f"first two {fmt}"
        out, _ = _ok(url, "list", "--with-contact-details", "--limit", "2", "--format", fmt,
                     "--purpose", purpose)  # fmt: skip
        assert "Name A" in out and "Name B" in out and "Name C" not in out
        with CRM(url) as crm:
            logged = {e.customer_id for e in crm.store.access_log.entries() if e.purpose == purpose}
        assert logged == {cid("A"), cid("B")}, fmt


def test_an_export_as_csv_lists_the_consenting_and_says_on_stderr_who_was_left_out(
    url: str,
) -> None:
    out, err = _ok(url, "export", "--campaign", "summer", "--format", "csv")
    assert [r["external_ref"] for r in _csv(out)] == list("AGH")
    assert err.strip() == (
        "campaign summer: exported 3 of 8 matching customers; left out 1 erased, 2 without "
        "marketing consent, 1 who had withdrawn consent, 1 who withdrew consent since"
    )


def test_an_export_as_json_carries_the_counts_and_stderr_says_them_too(url: str) -> None:
    out, err = _ok(url, "export", "--campaign", "li", "--owner", "staff:li", "--format", "json")
    data = json.loads(out)
    assert [c["external_ref"] for c in data["customers"]] == ["A", "H"]
    assert (data["campaign"], data["matched"], data["exported"]) == ("li", 4, 2)
    assert data["left_out"] == {
        "erased": 0, "no_consent": 1, "consent_withdrawn": 1, "consent_withdrawn_since": 0
    }  # fmt: skip
    assert "exported 2 of 4" in err


def test_an_export_as_a_table_says_who_was_left_out_below_it(url: str) -> None:
    out, err = _ok(url, "export", "--campaign", "east", "--region", "华东", "--format", "table")
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["A", "H"]
    assert out.splitlines()[-1] == (
        "campaign east: exported 2 of 4 matching customers; left out 1 erased, "
        "1 who had withdrawn consent"
    )
    assert err == ""


def test_an_export_with_contact_details_logs_the_campaign_as_purpose(url: str) -> None:
    out, _ = _ok(url, "export", "--campaign", "autumn", "--with-contact-details")
    assert [c["contact"]["email"] for c in json.loads(out)["customers"]] == [
        "a@example.com", "g@example.com", "h@example.com"
    ]  # fmt: skip
    with CRM(url) as crm:
        entries = crm.store.access_log.entries()
    logged = {e.customer_id for e in entries if e.purpose == "campaign autumn"}
    assert logged == {cid(ref) for ref in "AGH"}


def test_the_summary_has_a_table_per_attribute_and_a_row_per_value_in_csv(url: str) -> None:
    out, _ = _ok(url, "summary", "--format", "table")
    assert out.splitlines()[0].startswith("8 customers as of 2025-06-30")
    for attribute in ("category", "region", "industry", "company_size", "income_band"):
        assert attribute in out.splitlines()
    out, _ = _ok(url, "summary", "--format", "csv", "--owner", "staff:li")
    rows = [(r["attribute"], r["value"], r["customers"], r["share"]) for r in _csv(out)]
    assert ("region", "华东", "3", "75.0") in rows and ("region", "华南", "1", "25.0") in rows
    assert ("category", "signed", "3", "75.0") in rows
    data = json.loads(_ok(url, "summary")[0])
    assert data["total"] == 8 and data["by"]["category"][0] == {
        "value": "signed", "customers": 5, "share": 62.5
    }  # fmt: skip


def test_mistakes_are_errors_that_say_what_is_allowed(url: str) -> None:
    code, _, err = run(url, "customers", "list", "--segment", "Champion")
    assert code == 1 and "Error: segment: not a segment; one of" in err
    code, _, err = run(url, "customers", "list", "--consent", "yes")
    assert code == 2 and "'yes' is not one of" in err
    code, _, err = run(url, "customers", "export", "--region", "华东")
    assert code == 1 and "Error: campaign: a printable name" in err
    code, _, err = run(url, "customers", "list", "--last-contact-before", "soon")
    assert code == 1 and "last_contact_before" in err
    code, _, err = run(url, "customers", "list", "--format", "table", "--columns", "nope")
    assert code == 1 and "no column nope" in err


def test_a_past_date_lists_the_customers_of_then(url: str) -> None:
    code, out, err = run(url, "customers", "list", "--as-of", "2024-12-31", "--format", "csv")
    assert code == 0, err
    assert [r["external_ref"] for r in _csv(out)] == list("ABCDEFH")
