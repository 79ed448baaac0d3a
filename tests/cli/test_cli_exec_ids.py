"""``crm-es exec`` automatic command ids: a re-run of the same file appends nothing, while
another file (even one of the same name) or a second stdin feed is new input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crm_es import CRM
from tests.helpers.cli import lines, run

GRANT = '{"type":"grant_points","customer":"C-1","points":10}'


def points(url: str) -> int:
    with CRM(url) as crm:
        return crm.get_customer("C-1").points_balance


def registered(url: str) -> None:
    run(url, "exec", "-", input='{"type":"register_customer","external_ref":"C-1"}\n')


def test_re_running_a_file_appends_nothing(store_url: str, tmp_path: Path) -> None:
    registered(store_url)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(GRANT + "\n" + GRANT + "\n")
    first = lines(run(store_url, "exec", str(feed))[1])
    second = lines(run(store_url, "exec", str(feed))[1])
    assert [r.get("duplicate", False) for r in first] == [False, False]  # two lines, two grants
    assert [r.get("duplicate", False) for r in second] == [True, True]
    assert points(store_url) == 20


def test_a_file_of_the_same_name_elsewhere_is_new_input(store_url: str, tmp_path: Path) -> None:
    registered(store_url)
    for day in ("2026-12-06", "2026-12-07"):
        folder = tmp_path / day
        folder.mkdir()
        (folder / "feed.jsonl").write_text(GRANT + "\n")
        out = lines(run(store_url, "exec", str(folder / "feed.jsonl"))[1])
        assert out[0]["ok"] is True and "duplicate" not in out[0]
    assert points(store_url) == 20


def test_stdin_gets_no_automatic_ids_unless_asked(store_url: str) -> None:
    registered(store_url)
    run(store_url, "exec", "-", input=GRANT + "\n")
    run(store_url, "exec", "-", input=GRANT + "\n")
    assert points(store_url) == 20
    run(store_url, "exec", "--auto-ids", "-", input=GRANT + "\n")
    again = lines(run(store_url, "exec", "--auto-ids", "-", input=GRANT + "\n")[1])
    assert again[0]["duplicate"] is True and points(store_url) == 30


def test_automatic_ids_reveal_nothing_of_the_line(store_url: str, tmp_path: Path) -> None:
    registered(store_url)
    feed = tmp_path / "feed.jsonl"
    line = '{"type":"update_profile","customer":"C-1","phone":"+86 139 1234 5678"}'
    feed.write_text(line + "\n")
    run(store_url, "exec", str(feed))
    with CRM(store_url) as crm:
        ids = [e.command_id for e in crm.history("C-1") if e.command_id]
    assert len(ids) == 1 and ids[0].startswith("exec:")
    assert hashlib.sha256(line.encode()).hexdigest()[:32] not in ids[0]
    assert str(feed) not in ids[0] and "feed" not in json.dumps(ids)
