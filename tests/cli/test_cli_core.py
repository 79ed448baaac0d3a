"""``crm-es init|exec|show|history`` end to end on real stores."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crm_es.cli import main
from tests.helpers.cli import lines, run
from tests.helpers.wire import DESIGN_EXAMPLES


def test_init_creates_the_schema_and_is_safe_twice(store_url: str) -> None:
    assert run(store_url, "init")[0] == 0
    code, out, _ = run(store_url, "init")
    assert code == 0 and lines(out)[0]["ok"] is True


def test_exec_runs_every_design_example(store_url: str) -> None:
    code, out, _ = run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES) + "\n")
    results = lines(out)
    assert code == 0
    assert [r["ok"] for r in results] == [True] * 8
    assert [r["version"] for r in results] == list(range(1, 9))
    assert len({r["customer_id"] for r in results}) == 1


def test_a_bad_line_stores_nothing_and_later_lines_still_run(store_url: str) -> None:
    script = "\n".join(
        [
            DESIGN_EXAMPLES[0],
            '{"type":"grant_points","customer":"C-1","points":100}',
            '{"type":"redeem_points","customer":"C-1","points":"lots"}',
            '{"type":"redeem_points","customer":"C-1","points":500}',
            '{"type":"record_purchase", "customer":',
            '{"type":"redeem_points","customer":"C-1","points":30}',
        ]
    )
    code, out, err = run(store_url, "exec", "-", input=script)
    results = lines(out)
    assert code == 1
    assert [r["ok"] for r in results] == [True, True, False, False, False, True]
    assert results[2] == {
        "ok": False,
        "line": 3,
        "error": "Expected `int`, got `str` - at `$.points`",
    }
    assert results[3]["error"] == "cannot redeem 500 points: only 100 available"
    assert results[4]["error"] == "JSON is malformed: the line ends inside an object or a string"
    assert results[5]["version"] == 3  # the failed lines appended nothing
    assert "<stdin> line 3: Expected `int`, got `str` - at `$.points`" in err
    show = json.loads(run(store_url, "show", "C-1")[1])
    assert show["points"]["balance"] == 70


def test_show_prints_the_whole_customer_state(store_url: str) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES))
    code, out, _ = run(store_url, "show", "C-1")
    state = json.loads(out)
    assert code == 0
    assert state["external_ref"] == "C-1" and state["profile"]["name"] == "王芳"
    assert state["purchases"]["paid"] == {"CNY": "129.90"}
    assert state["points"]["balance"] == 50 and state["tier"] == "standard"
    assert state["open_complaints"] == [] and state["churn"]["churned"] is False
    at_two = json.loads(run(store_url, "show", "C-1", "--version", "2")[1])
    assert at_two["version"] == 2 and at_two["points"]["balance"] == 0


def test_history_prints_every_event_with_its_envelope(store_url: str) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES))
    code, out, _ = run(store_url, "history", "C-1")
    events = lines(out)
    assert code == 0
    assert [e["type"] for e in events][:3] == [
        "CustomerRegistered",
        "PurchaseRecorded",
        "ContactLogged",
    ]
    assert events[1]["occurred_at"] == "2026-01-05T02:00:00Z"
    for key in (
        "recorded_at",
        "occurred_at",
        "actor",
        "command_id",
        "correlation_id",
        "causation_id",
        "reason",
        "version",
    ):
        assert key in events[0]
    # the actor is the principal: the local admin on SQLite, the session's role on PostgreSQL
    assert events[0]["actor"] == ("pg:postgres" if store_url.startswith("postgresql") else "cli")


def test_an_unknown_customer_is_an_error_without_traceback(sqlite_url: str) -> None:
    run(sqlite_url, "init")
    code, out, err = run(sqlite_url, "show", "nobody")
    assert code == 1 and out == ""
    assert err.strip() == "Error: customer 'nobody' not found"


READ_ONLY = (
    ["show", "C-1"],
    ["history", "C-1"],
    ["report", "segments"],
    ["audit", "verify"],
    ["maintain"],
    ["projections", "status"],
)


def test_read_only_commands_on_a_store_never_created_say_so_and_create_nothing(
    store_url: str, tmp_path: Path
) -> None:
    for args in READ_ONLY:
        code, out, err = run(store_url, *args)
        assert code == 1 and out == "", args
        assert err.startswith("Error: no store at ") and "crm-es init" in err, (args, err)
    assert not (tmp_path / "crm.db").exists()
    assert run(store_url, "init")[0] == 0  # and init creates it, after which they answer
    assert run(store_url, "report", "segments")[0] == 0


def test_a_version_beyond_the_stream_is_an_error(store_url: str) -> None:
    run(store_url, "exec", "-", input="\n".join(DESIGN_EXAMPLES))
    for extra in ([], ["--as-of", "2099-01-01"]):
        code, out, err = run(store_url, "show", "C-1", "--version", "9", *extra)
        assert code == 1 and out == ""
        assert err.strip() == "Error: version: C-1's history has 8 versions (got 9)"
    assert run(store_url, "show", "C-1", "--version", "8")[0] == 0


def test_the_store_url_can_come_from_the_environment(sqlite_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["exec", "-"], input=DESIGN_EXAMPLES[0], env={"CRM_ES_DB": sqlite_url}
    )
    assert result.exit_code == 0
    assert json.loads(run(sqlite_url, "show", "C-1")[1])["external_ref"] == "C-1"


def test_a_bad_store_url_is_a_clear_error() -> None:
    code, _, err = run("mysql://x/y", "init")
    assert code == 1 and "unsupported store URL" in err


def test_a_huge_or_deeply_nested_line_is_a_clear_error_and_the_run_goes_on(
    sqlite_url: str, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.jsonl"
    contact = '{"type":"log_contact","customer":"C-1","channel":"sms","direction":"inbound"'
    feed.write_text(
        '{"type":"register_customer","external_ref":"C-1"}\n'
        + contact + ',"summary":' + "[" * 100_000 + "]" * 100_000 + "}\n"
        + contact + ',"summary":"' + "x" * 3_000_000 + '"}\n'
        + contact + "}\n"
    )  # fmt: skip
    code, out, _ = run(sqlite_url, "exec", str(feed))
    results = lines(out)
    assert code == 1 and [r["ok"] for r in results] == [True, False, False, True]
    assert "$.summary" in str(results[1]["error"])
    assert "longer than 1024 KiB" in str(results[2]["error"])


def test_refs_are_one_customer_however_their_accents_are_composed(store_url: str) -> None:
    composed, decomposed = "C-Caf\u00e9", "C-Cafe\u0301"
    script = "\n".join(
        json.dumps(line, ensure_ascii=False)
        for line in (
            {"type": "register_customer", "external_ref": composed, "command_id": "r1"},
            {"type": "register_customer", "external_ref": decomposed, "command_id": "r2"},
            {"type": "grant_points", "customer": decomposed, "points": 5, "command_id": "g1"},
        )
    )
    code, out, _ = run(store_url, "exec", "-", input=script)
    results = lines(out)
    assert code == 1 and [r["ok"] for r in results] == [True, False, True]
    assert "already registered" in str(results[1]["error"])
    assert len({r.get("customer_id") for r in (results[0], results[2])}) == 1
    assert json.loads(run(store_url, "show", composed)[1])["points"]["balance"] == 5


def test_look_alike_refs_with_invisible_characters_are_refused(store_url: str) -> None:
    for ref in ("C-1\u200b", "\u202eC-1", "C\u20601", "\ufeffC-1"):
        line = json.dumps({"type": "register_customer", "external_ref": ref})
        code, out, err = run(store_url, "exec", "-", input=line)
        assert code == 1 and "invisible" in lines(out)[0]["error"] and "line 1" in err, ref
