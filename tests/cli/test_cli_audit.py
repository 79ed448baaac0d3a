"""``crm-es history|show --as-of|audit verify|audit export|audit import|erase`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from crm_es.cli.render import display_width
from tests.helpers.cli import lines, run
from tests.helpers.raw_store import db_id, raw, table
from tests.helpers.wire import DESIGN_EXAMPLES

BACK_DATED = [
    '{"type":"register_customer","external_ref":"C-9","name":"李雷",'
    '"occurred_at":"2025-01-01T09:00:00+08:00"}',
    '{"type":"record_purchase","customer":"C-9","order_id":"O-1","amount":"50.00",'
    '"currency":"CNY","occurred_at":"2025-06-01T09:00:00+08:00","correlation_id":"import-7"}',
]


def test_history_table_reads_well_with_chinese_and_json_lines_filter(store_url: str) -> None:
    extra = (
        '{"type":"log_contact","customer":"C-1","channel":"wechat","direction":"inbound",'
        '"summary":"问发票","reason":"客户来电","correlation_id":"call-1"}'
    )
    run(store_url, "exec", "-", input="\n".join([*DESIGN_EXAMPLES, extra]))
    code, out, _ = run(store_url, "history", "C-1", "--format", "table")
    assert code == 0
    header, _, *rows = [line for line in out.splitlines() if not line.startswith("(")]
    # what happened first; the rest (recorded time, reason, correlation id) as 120 columns allow
    assert header.split()[:6] == ["version", "occurred", "(UTC)", "type", "actor", "summary"]
    assert all(display_width(line) <= 120 for line in out.splitlines())
    assert len(rows) == 9
    assert "inbound wechat contact: 问发票" in rows[8]
    wide = run(store_url, "history", "C-1", "--format", "csv")[1]
    assert "客户来电" in wide and "call-1" in wide
    assert "registered C-1 王芳 (individual, potential" in rows[0]  # long ones end in …
    assert "purchase O-1 129.90 CNY" in rows[1] and "2026-01-05 02:00:00" in rows[1]
    assert "complaint K-1 filed (high, delivery)" in rows[3]
    assert "redeemed 50 points (coupon)" in rows[7]
    # Columns line up by display width: every summary starts in the same terminal column.
    # A row with a Chinese reason included.
    column = display_width(header[: header.index("summary")])
    firsts = ("registered", "purchase", "outbound", "complaint", "complaint", "survey",
              "granted", "redeemed", "inbound")  # fmt: skip
    starts = {display_width(r[: r.index(w)]) for r, w in zip(rows, firsts, strict=True)}
    assert starts == {column}

    code, out, _ = run(
        store_url, "history", "C-1", "--type", "PurchaseRecorded", "--type", "PointsRedeemed"
    )
    events = lines(out)
    assert code == 0 and [e["type"] for e in events] == ["PurchaseRecorded", "PointsRedeemed"]
    assert events[0]["summary"] == "purchase O-1 129.90 CNY" and "recorded_at" in events[0]
    assert lines(run(store_url, "history", "C-1", "--since", "2999-01-01")[1]) == []
    code, _, err = run(store_url, "history", "C-1", "--type", "Nope")
    assert code == 1 and "Error: type: unknown event type" in err


def test_show_as_of_and_known_at_on_the_command_line(store_url: str) -> None:
    run(store_url, "exec", "-", input="\n".join(BACK_DATED))

    def show(*args: str) -> dict[str, object]:
        code, out, err = run(store_url, "show", "C-9", *args)
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    assert show("--as-of", "2025-05-31")["purchases"] == show("--version", "1")["purchases"]
    assert show("--as-of", "2025-06-01")["purchases"]["orders"] == 1  # type: ignore[index]
    assert show("--as-of", "2025-06-01", "--version", "1")["version"] == 1
    code, _, err = run(store_url, "show", "C-9", "--known-at", "2020-01-01")
    assert code == 1 and "Error: customer 'C-9' did not exist yet known at 2020-01-01" in err
    code, _, err = run(store_url, "show", "C-9", "--as-of", "soon")
    assert code == 1 and "Error: as_of: not an ISO date or date-time (got 'soon')" in err


def test_audit_verify_passes_then_names_the_broken_link_and_checks_the_digest(
    store_url: str,
) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES + BACK_DATED))
    code, out, err = run(store_url, "audit", "verify")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and (report["streams"], report["events"]) == (2, 11)
    assert "ok: 11 events in 2 streams verify" in err
    digest = report["digest"]
    assert run(store_url, "audit", "verify", "--expect", digest)[0] == 0
    # C-9: registered, its first purchase, the move to signed that purchase made
    assert json.loads(run(store_url, "audit", "verify", "C-9")[1])["events"] == 3

    # Deleting the last event leaves a valid chain: only --expect sees it.
    raw(store_url, f"DELETE FROM {table(store_url)} WHERE originator_id = ? AND "
        "originator_version = 8", (db_id(store_url, "C-1"),))  # fmt: skip
    assert run(store_url, "audit", "verify")[0] == 0
    code, _, err = run(store_url, "audit", "verify", "--expect", digest)
    assert code == 1 and f"does not match the expected {digest}" in err

    raw(store_url, f"DELETE FROM {table(store_url)} WHERE originator_id = ? AND "
        "originator_version = 3", (db_id(store_url, "C-1"),))  # fmt: skip
    code, out, err = run(store_url, "audit", "verify")
    assert code == 1 and json.loads(out)["ok"] is False
    cid = json.loads(run(store_url, "audit", "verify", "C-9")[1])["customer_id"]
    assert cid != json.loads(out)["problems"][0]["customer_id"]
    assert err.startswith("Error: customer ") and "version 3: version 3 is missing" in err


def test_audit_export_and_import_on_the_command_line(store_url: str, tmp_path: Path) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES + BACK_DATED))
    assert run(store_url, "erase", "C-9", "--reason", "ticket 7")[0] == 0
    export = tmp_path / "export.jsonl"
    code, _, err = run(store_url, "audit", "export", "--out", str(export))
    assert code == 0 and "exported 12 events of 2 customers" in err
    code, out, _ = run(store_url, "audit", "export", "C-1", "--known-at", "2999-12-31")
    assert code == 0 and len(out.splitlines()) == 1 + 1 + 8 + 1
    digest = json.loads(run(store_url, "audit", "verify")[1])["digest"]

    target = f"sqlite:///{tmp_path / 'target.db'}"
    code, out, _ = run(target, "audit", "import", str(export))
    assert code == 0 and json.loads(out) == {
        "streams": 2, "events": 12, "stored": 12, "digest": digest, "matches_export": True,
        "signed": "unsigned",
    }  # fmt: skip
    assert json.loads(run(target, "audit", "verify", "--expect", digest)[1])["ok"] is True
    assert json.loads(run(target, "show", "C-1")[1])["profile"]["name"] == "王芳"
    assert json.loads(run(target, "show", "C-9")[1])["profile"]["name"] == "[erased]"
    code, _, err = run(target, "audit", "import", str(export))
    assert code == 1 and "already have events in this store" in err


def test_erase_on_the_command_line_and_a_second_time_is_an_error(store_url: str) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES))
    code, out, _ = run(
        store_url, "erase", "C-1", "--reason", "ticket 9", "--requested-by", "dpo:li",
        "--legal-basis", "PIPL Art. 47",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and result["ok"] is True and result["version"] == 9
    assert result["completed_earlier_erasure"] is False
    state = json.loads(run(store_url, "show", "C-1")[1])
    assert state["erased"] is True and state["profile"]["name"] == "[erased]"
    assert state["purchases"]["paid"] == {"CNY": "129.90"}
    last = lines(run(store_url, "history", "C-1")[1])[-1]
    assert (last["type"], last["reason"], last["requested_by"], last["legal_basis"]) == (
        "PersonalDataErased", "ticket 9", "dpo:li", "PIPL Art. 47"
    )  # fmt: skip
    assert "[erased]" in run(store_url, "history", "C-1", "--format", "table")[1]
    code, _, err = run(store_url, "erase", "C-1", "--reason", "again")
    assert code == 1 and "has already been erased" in err
    code, _, err = run(store_url, "erase", "C-1")
    assert code == 2 and "Missing option '--reason'" in err
