"""``crm-es customers find`` and ``customers duplicates``: who holds a phone or an email, as a
table, JSON or CSV, names only when asked for (and logged), hostile values refused clearly."""

from __future__ import annotations

import csv
import io
import json

import pytest

from crm_es import CRM
from tests.helpers.cli import run

NAME = "欧阳娜娜"


@pytest.fixture
def url(store_url: str) -> str:
    with CRM(store_url) as crm:
        crm.register_customer(
            external_ref="C-1", name=NAME, phone="+86 139 1234 5678", email="nana@example.org",
            category="signed", owner="staff:li",
        )  # fmt: skip
        crm.register_customer(external_ref="C-2", phone="13912345678")
        crm.register_customer(external_ref="C-3", email="NANA@example.org", phone="13800000000")
    return store_url


def test_find_by_phone_lists_the_holders_as_json_without_the_phone_or_any_name(url: str) -> None:
    code, out, err = run(url, "customers", "find", "--phone", "0086 139-1234-5678")
    assert code == 0, err
    found = json.loads(out)
    assert (found["by"], found["total"]) == ("phone", 2)
    assert [(c["external_ref"], c["owner"], c["category"]) for c in found["customers"]] == [
        ("C-1", "staff:li", "signed"),
        ("C-2", "(unassigned)", "potential"),
    ]
    assert "13912345678" not in out and "1234" not in out and NAME not in out


def test_find_by_email_as_csv_and_table_with_contact_details_read_through_the_log(
    url: str,
) -> None:
    code, out, err = run(url, "customers", "find", "--email", "Nana@Example.org", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["external_ref"] for r in rows] == ["C-1", "C-3"] and "name" not in rows[0]
    code, out, err = run(
        url, "customers", "find", "--email", "nana@example.org", "--format", "table",
        "--with-contact-details", "--purpose", "inbound call",
    )  # fmt: skip
    assert code == 0, err
    assert NAME in out and "(2 customers with this email as of" in out
    code, log, err = run(url, "audit", "access", "C-1", "--format", "json")
    assert code == 0, err
    assert "inbound call" in log


def test_a_number_nobody_holds_finds_nobody(url: str) -> None:
    code, out, _ = run(url, "customers", "find", "--phone", "13700000000", "--format", "json")
    assert code == 0 and json.loads(out)["customers"] == []


def test_duplicates_groups_the_customers_sharing_a_phone_or_an_email(url: str) -> None:
    code, out, err = run(url, "customers", "duplicates", "--format", "csv")
    assert code == 0, err
    rows = [(r["group"], r["by"], r["size"], r["external_ref"])
            for r in csv.DictReader(io.StringIO(out))]  # fmt: skip
    assert rows == [
        ("1", "phone", "2", "C-1"), ("1", "phone", "2", "C-2"),
        ("2", "email", "2", "C-1"), ("2", "email", "2", "C-3"),
    ]  # fmt: skip
    code, out, _ = run(url, "customers", "duplicates", "--format", "json")
    assert json.loads(out)["customers"] == 3
    code, out, _ = run(url, "customers", "duplicates", "--as-of", "2000-01-01", "--format", "table")
    assert code == 0 and "(0 groups" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phone", "call me"], "a phone is digits"),
        (["--phone", "138\x000000"], "control"),
        (["--phone", "1" * 100_000], "longer than 40"),
        (["--phone", ""], "needs digits"),
        (["--email", "nobody"], "local@domain"),
        (["--email", "a@b.c" + "x" * 300], "longer than 254"),
        ([], "give a phone or an email"),
        (["--phone", "13800000000", "--email", "a@b.c"], "one of them"),
        (["--phone", "13800000000", "--as-of", "yesterday"], "Error"),
    ],
)
def test_a_hostile_value_is_refused_with_an_error_and_no_traceback(
    url: str, args: list[str], message: str
) -> None:
    code, out, err = run(url, "customers", "find", *args)
    assert code in (1, 2) and out == ""
    assert err.startswith("Error: ") and message in err and "Traceback" not in err


def test_customers_merge_folds_a_duplicate_and_it_leaves_the_duplicates_list(url: str) -> None:
    code, out, err = run(url, "customers", "duplicates", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["customers"] == 3  # C-1 with C-2 (phone) and C-3 (email)
    code, out, err = run(url, "customers", "merge", "C-2", "--into", "C-1", "--reason",
                         "ticket 4711", "--command-id", "merge-1")  # fmt: skip
    assert code == 0, err
    merged = json.loads(out)
    assert (merged["ok"], merged["duplicate"]) == (True, False)
    code, out, err = run(url, "customers", "merge", "C-2", "--into", "C-1", "--reason",
                         "ticket 4711", "--command-id", "merge-1")  # fmt: skip
    assert code == 0 and json.loads(out)["duplicate"] is True  # answered as done
    groups = json.loads(run(url, "customers", "duplicates", "--format", "json")[1])
    assert [[c["external_ref"] for c in g["customers"]] for g in groups["groups"]] == [
        ["C-1", "C-3"]
    ]
    found = json.loads(run(url, "customers", "find", "--phone", "13912345678")[1])
    assert [c["external_ref"] for c in found["customers"]] == ["C-1"]
    code, _, err = run(url, "customers", "merge", "C-2", "--into", "C-3")
    assert code == 1 and "was merged into customer" in err and "Traceback" not in err
    code, _, err = run(url, "customers", "merge", "C-1", "--into", "C-1")
    assert code == 1 and "cannot be merged into itself" in err
