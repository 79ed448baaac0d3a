"""``crm-es audit access`` and ``crm-es audit subject`` through the command line: the reads of a
customer and by a principal in every format, a data subject's access request that is itself
logged, and ``audit verify`` (with and without anchors) naming a tampered access-log row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_es import CRM
from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.access_log import ACCESS_TABLE
from tests.helpers.cli import run
from tests.helpers.raw_store import raw

C1, C2 = customer_id_for_ref("C-1"), customer_id_for_ref("C-2")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def url(sqlite_url: str) -> Iterator[str]:
    with CRM(sqlite_url) as crm:
        crm.register_customer(external_ref="C-1", name="王芳", email="wang@example.cn")
        crm.register_customer(external_ref="C-2", name="李雷")
        log = crm.store.access_log
        log.record("user:li", [C1, C2], "show", ["name", "email"], "call back", at=T0)
        log.record("user:wu", [C1], "history", ["name"], at=T0)
    yield sqlite_url


def test_access_lists_a_customers_reads_as_json_when_piped(url: str) -> None:
    code, out, err = run(url, "audit", "access", "C-1")
    assert code == 0, err
    reads = json.loads(out)
    assert [(r["seq"], r["principal"], r["action"], r["fields"]) for r in reads] == [
        (1, "user:li", "show", ["name", "email"]), (3, "user:wu", "history", ["name"])]  # fmt: skip
    assert reads[0] == {"seq": 1, "at": T0.isoformat(), "principal": "user:li",
                        "customer_id": str(C1), "action": "show", "fields": ["name", "email"],
                        "purpose": "call back"}  # fmt: skip


def test_access_by_a_principal_and_by_both(url: str) -> None:
    code, out, _ = run(url, "audit", "access", "--by", "user:li")
    assert code == 0 and [r["customer_id"] for r in json.loads(out)] == [str(C1), str(C2)]
    code, out, _ = run(url, "audit", "access", "C-2", "--by", "user:wu")
    assert code == 0 and json.loads(out) == []


def test_access_as_a_table_and_as_csv(url: str) -> None:
    code, out, _ = run(url, "audit", "access", "C-1", "--format", "table")
    header = out.splitlines()[0].split()
    assert code == 0 and header == ["seq", "at", "principal", "customer_id", "action", "fields",
                                    "purpose"]  # fmt: skip
    assert "name,email" in out and "call back" in out
    code, out, _ = run(url, "audit", "access", "--by", "user:wu", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "seq,at,principal,customer_id,action,fields,purpose"
    assert out.splitlines()[1].startswith(f"3,{T0.isoformat()},user:wu,{C1},history,name,")


def test_access_needs_a_customer_or_a_principal(url: str) -> None:
    code, _, err = run(url, "audit", "access")
    assert code == 2 and "give a CUSTOMER, --by PRINCIPAL, or both" in err


def test_subject_holds_the_personal_data_and_the_reads_and_logs_itself(url: str) -> None:
    code, out, err = run(url, "audit", "subject", "C-1", "--purpose", "DSAR 12",
                         "--format", "json")  # fmt: skip
    assert code == 0, err
    answer = json.loads(out)
    assert answer["personal_data"]["profile"]["name"] == "王芳"
    assert answer["personal_data"]["profile"]["email"] == "wang@example.cn"
    assert "李雷" not in out
    reads = answer["reads"]
    assert [(r["principal"], r["action"]) for r in reads] == [
        ("user:li", "show"), ("user:wu", "history"), ("cli", "subject")]  # fmt: skip
    assert reads[-1]["purpose"] == "DSAR 12"
    code, out, _ = run(url, "audit", "access", "C-1", "--by", "cli")
    assert code == 0 and [r["action"] for r in json.loads(out)] == ["subject"]


def test_subject_as_readable_lines(url: str) -> None:
    code, out, err = run(url, "audit", "subject", "C-1", "--format", "table")
    assert code == 0, err
    assert "name: 王芳" in out and "reads (3):" in out and "user:wu" in out


def test_subject_of_an_unknown_customer_is_an_error_and_logs_nothing(url: str) -> None:
    code, _, err = run(url, "audit", "subject", "C-404")
    assert code == 1 and "Error" in err and "Traceback" not in err
    code, out, _ = run(url, "audit", "access", "--by", "cli")
    assert json.loads(out) == []


def test_subject_has_no_csv_form_and_refuses_a_bad_purpose(url: str) -> None:
    code, _, err = run(url, "audit", "subject", "C-1", "--format", "csv")
    assert code == 2 and "no CSV form" in err
    code, _, err = run(url, "audit", "subject", "C-1", "--purpose", "a\nb")
    assert code == 1 and "purpose" in err


def test_verify_names_a_tampered_row_with_and_without_anchors(url: str, tmp_path: Path) -> None:
    key, anchors, public = tmp_path / "signing.pem", tmp_path / "anchors.jsonl", tmp_path / "pub"
    code, out, err = run(url, "audit", "signing-key", "--out", str(key))
    assert code == 0, err
    public.write_text(out)
    code, _, err = run(url, "audit", "anchor", "--out", str(anchors), "--signing-key", str(key))
    assert code == 0, err
    raw(url, f"UPDATE {ACCESS_TABLE} SET principal = ? WHERE seq = 2", ("user:nobody",))
    code, out, err = run(url, "audit", "verify")
    assert code == 1 and "access log: row 2: its hash does not match" in err
    code, out, err = run(url, "audit", "verify", "--anchors", str(anchors),
                         "--public-key", str(public))  # fmt: skip
    problems = [p["problem"] for p in json.loads(out)["problems"]]
    assert code == 1
    assert "checkpoint 1: access log: row 2, which it covered, was altered or moved (and every " \
        "row after it then differs)" in problems  # fmt: skip
