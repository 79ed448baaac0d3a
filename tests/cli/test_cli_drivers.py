"""``crm-es report drivers`` and ``crm-es settings survey-topics`` on a real store."""

from __future__ import annotations

import csv
import io
import json

from crm_es import CRM
from tests.helpers.cli import lines, run

DEFAULT = ["product_quality", "delivery", "price", "service_attitude", "after_sale", "other"]


def populate(url: str) -> None:
    """Two customers answering on delivery (1 and 2 on CSAT: dissatisfied) and on price (5)."""
    with CRM(url) as crm:
        for n, ref in enumerate(("C-1", "C-2")):
            crm.register_customer(external_ref=ref, occurred_at="2026-01-01T00:00:00+08:00")
            for survey, topic, score in (("S-1", "delivery", 1 + n), ("S-2", "price", 5)):
                crm.answer_survey(customer=ref, survey_id=survey, metric="csat", score=score,
                                  topic=topic, occurred_at="2026-02-01T00:00:00+08:00")  # fmt: skip


def test_report_drivers_ranks_the_factor_to_fix_first_in_every_format(store_url: str) -> None:
    populate(store_url)
    args = ("report", "drivers", "--as-of", "2026-06-30", "--churn-days", "30")
    code, out, err = run(store_url, *args, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["churn_days"] == 30 and report["topic_answers"] == 4
    assert [(f["rank"], f["factor"], f["dissatisfied_share"]) for f in report["factors"]] == [
        (1, "delivery", 100.0),
        (2, "price", 0.0),
    ]
    assert report["factors"][0]["mean_score"] == 12.5  # (0 + 25) / 2
    code, out, _ = run(store_url, *args, "--format", "csv", "--sort", "-mean_score")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["factor"] for r in rows] == ["price", "delivery"]
    code, out, _ = run(store_url, *args, "--format", "table", "--columns", "rank,factor,label")
    assert code == 0 and "物流配送" in out and out.index("delivery") < out.index("price")
    code, out, _ = run(store_url, *args, "--format", "json", "--known-at", "2020-01-01")
    assert code == 0 and json.loads(out)["factors"] == []  # nothing had been recorded then


def test_report_drivers_refuses_a_bad_option_with_a_usage_error(sqlite_url: str) -> None:
    assert run(sqlite_url, "init")[0] == 0
    code, _, err = run(sqlite_url, "report", "drivers", "--churn-days", "0")
    assert code == 2 and "--churn-days" in err
    code, _, err = run(sqlite_url, "report", "drivers", "--floor-days", "0")
    assert code == 2 and "--floor-days" in err


def test_settings_survey_topics_shows_changes_and_resets_the_list(store_url: str) -> None:
    assert run(store_url, "init")[0] == 0
    code, out, _ = run(store_url, "settings", "survey-topics")
    (shown,) = lines(out)
    assert code == 0 and shown["survey_topics"] == DEFAULT and shown["default"] is True
    assert shown["labels"] == {"product_quality": "产品质量", "delivery": "物流配送",
                               "price": "价格", "service_attitude": "服务态度",
                               "after_sale": "售后", "other": "其他"}  # fmt: skip
    code, out, _ = run(store_url, "settings", "survey-topics", "--set", "packaging,price")
    (changed,) = lines(out)
    assert code == 0 and changed == {"survey_topics": ["packaging", "price"], "default": False,
                                     "labels": {"price": "价格"}}  # fmt: skip
    line = ('{"type":"register_customer","external_ref":"C-1"}\n'
            '{"type":"answer_survey","customer":"C-1","survey_id":"S","metric":"csat","score":4,'
            '"topic":"delivery"}\n')  # fmt: skip
    code, out, _ = run(store_url, "exec", "-", input=line)
    assert code == 1 and "allowed: packaging, price (" in str(lines(out)[1]["error"])
    code, out, _ = run(store_url, "settings", "survey-topics", "--reset")
    assert code == 0 and lines(out)[0]["survey_topics"] == DEFAULT


def test_settings_survey_topics_refuses_a_bad_list_and_keeps_the_old_one(sqlite_url: str) -> None:
    assert run(sqlite_url, "init")[0] == 0
    code, _, err = run(sqlite_url, "settings", "survey-topics", "--set", "price,物流")
    assert code == 1 and "Error: survey_topics: a topic is lower-case ASCII" in err
    assert "(got '物流')" in err
    code, _, err = run(sqlite_url, "settings", "survey-topics", "--set", "a,a")
    assert code == 1 and "listed twice (got 'a')" in err
    code, _, err = run(sqlite_url, "settings", "survey-topics", "--set", "a", "--reset")
    assert code == 2 and "--set or --reset" in err
    code, out, _ = run(sqlite_url, "settings", "survey-topics")
    assert code == 0 and lines(out)[0]["survey_topics"] == DEFAULT
