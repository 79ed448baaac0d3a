"""What a hostile newcomer tried on issue 17's promises, each now refused or kept: ids and money
with a trailing newline or an invisible edge, an export over an earlier file, a password in the
URL's query, the satisfaction report's rows in JSON, a Big5 file taken for GB18030, an erasure
without a reason, wide tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_es.cli.render import display_width
from crm_es.store.url import redacted
from tests.helpers.cli import lines, run


@pytest.mark.parametrize(
    "line",
    [
        {"type": "register_customer", "external_ref": "C-9\n"},
        {"type": "register_customer", "external_ref": "C-9\u2028"},
        {"type": "register_customer", "external_ref": "C-1\u00a0"},
        {"type": "register_customer", "external_ref": " C-9"},
        {"type": "register_customer", "external_ref": "C-9\U000e0041"},
        {"type": "record_purchase", "customer": "C-1", "order_id": "N-1", "amount": "129.90\n",
         "currency": "CNY"},
        {"type": "record_purchase", "customer": "C-1", "order_id": "N-1\n", "amount": "5.00",
         "currency": "CNY"},
    ],
)  # fmt: skip
def test_look_alike_ids_and_money_with_a_trailing_newline_are_refused(
    sqlite_url: str, line: dict[str, str]
) -> None:
    run(sqlite_url, "exec", "-", input='{"type":"register_customer","external_ref":"C-1"}')
    code, out, _ = run(sqlite_url, "exec", "-", input=json.dumps(line))
    assert code == 1 and lines(out)[0]["ok"] is False


def test_a_failed_export_leaves_the_earlier_file_as_it_was(sqlite_url: str, tmp_path: Path) -> None:
    run(sqlite_url, "init")
    earlier = tmp_path / "export.jsonl"
    earlier.write_text("precious\n")
    code, _, err = run(sqlite_url, "audit", "export", "C-NOPE", "--out", str(earlier))
    assert code == 1 and "not found" in err
    assert earlier.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_a_password_in_the_query_is_never_shown() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test?schema=s&password=s3cr3t&sslpassword=x"
    assert "s3cr3t" not in redacted(url) and "=x" not in redacted(url)
    assert redacted(url).endswith("schema=s&password=***&sslpassword=***")


def test_satisfaction_rows_are_selected_in_json_too(sqlite_url: str) -> None:
    script = "\n".join(
        json.dumps(line)
        for line in (
            {"type": "register_customer", "external_ref": "C-1"},
            *({"type": "answer_survey", "customer": "C-1", "survey_id": f"S-{m}", "metric": "csat",
               "score": 5, "occurred_at": f"2026-0{m}-10T10:00:00Z"} for m in (1, 2, 3)),
        )
    )  # fmt: skip
    run(sqlite_url, "exec", "-", input=script)
    code, out, _ = run(sqlite_url, "report", "satisfaction", "--format", "json", "--limit", "1",
                       "--sort", "-key")  # fmt: skip
    assert code == 0
    assert [b["key"] for b in json.loads(out)["by_month"]] == ["2026-03"]


def test_a_big5_file_is_not_taken_for_gb18030(sqlite_url: str, tmp_path: Path) -> None:
    run(sqlite_url, "init")
    big5 = tmp_path / "big5.csv"
    big5.write_bytes("external_ref,name,region\nB-1,王小明,華東\n".encode("big5"))
    code, _, err = run(sqlite_url, "import", "customers", str(big5))
    assert code == 1 and "private use" in err and "--encoding" in err
    assert run(sqlite_url, "import", "customers", str(big5), "--encoding", "big5")[0] == 0
    shown = json.loads(run(sqlite_url, "show", "B-1", "--format", "json")[1])
    assert (shown["profile"]["name"], shown["profile"]["region"]) == ("王小明", "華東")


def test_an_erasure_needs_a_reason(sqlite_url: str) -> None:
    run(sqlite_url, "exec", "-", input='{"type":"register_customer","external_ref":"C-1"}')
    code, _, err = run(sqlite_url, "erase", "C-1", "--reason", "  ")
    assert code == 2 and "--reason" in err
    assert json.loads(run(sqlite_url, "show", "C-1", "--format", "json")[1])["erased"] is False


def test_long_names_are_cut_not_the_table(sqlite_url: str) -> None:
    name = "北京" + "非常长的公司名称" * 8 + "有限公司"
    script = "\n".join(
        json.dumps(line, ensure_ascii=False)
        for line in (
            {"type": "register_customer", "external_ref": "C-1", "name": name},
            {"type": "record_purchase", "customer": "C-1", "order_id": "O-1", "amount": "10.00",
             "currency": "CNY"},
        )
    )  # fmt: skip
    run(sqlite_url, "exec", "-", input=script)
    code, out, _ = run(sqlite_url, "report", "segments", "--format", "table")
    header = out.splitlines()[0].split()
    assert code == 0 and header[:4] == ["external_ref", "name", "owner", "lifecycle"]
    assert "monetary" in header and "…" in out
    assert all(display_width(line) <= 120 for line in out.splitlines())
    asked = run(sqlite_url, "report", "segments", "--format", "table", "--columns",
                "name,owner,monetary")[1]  # fmt: skip
    assert asked.splitlines()[0].split() == ["name", "owner", "monetary"]
