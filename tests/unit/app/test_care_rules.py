"""The care rules file: the shipped defaults read, and every mistake is an error naming the
file, the ``$.path`` and what the key takes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crm_es.app.care_rules import RULE_NAMES, CareRulesError, default_rules, load_rules, parse_rules


def test_the_shipped_rules_enable_every_rule_and_name_their_version() -> None:
    rules = default_rules()
    assert rules.version == 1
    assert rules.enabled() == list(RULE_NAMES)
    assert rules.win_back is not None and rules.win_back.high_value == "top_monetary_quintile"
    assert rules.holiday_greeting is not None
    assert {"name": "春节", "date": date(2026, 2, 17)} in [
        {"name": h.name, "date": h.date} for h in rules.holiday_greeting.holidays
    ]


def test_a_rule_left_out_or_disabled_schedules_nothing() -> None:
    rules = parse_rules("version = 1\n[check_in]\ndays_silent = 30\n[complaint_visit]\n"
                        "enabled = false\ndays_after = 2\n")  # fmt: skip
    assert rules.enabled() == ["check_in"]
    assert rules.rule("complaint_visit") is None and rules.rule("birthday_greeting") is None


def test_a_file_is_read_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("version = 1\n[birthday_greeting]\ndays_ahead = 3\n", encoding="utf-8")
    assert load_rules(path).enabled() == ["birthday_greeting"]


def test_a_missing_file_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(CareRulesError, match=r"nope\.toml: cannot read the care rules"):
        load_rules(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1\n[check_in", "f.toml: not valid TOML: Expected ']'"),
        (
            "[check_in]\ndays_silent = 3",
            "f.toml: $.version must be 1 (the only version this crm-es reads), got no version key",
        ),
        ("version = 2", "$.version must be 1 (the only version this crm-es reads), got 2"),
        ('version = "1"', "$.version must be 1 (the only version this crm-es reads), got '1'"),
        (
            "version = 1\nbirthday = 3",
            "Object contains unknown field `birthday` - at `$`; allowed "
            "keys: version, catch_up_days, birthday_greeting, holiday_greeting, first_purchase_visit, "
            "large_purchase_visit, complaint_visit, check_in, win_back",
        ),
        (
            "version = 1\n[check_in]\ndays = 3",
            "Object contains unknown field `days` - at "
            "`$.check_in`; allowed keys: enabled, days_silent",
        ),
        (
            "version = 1\n[check_in]\nenabled = true",
            "Object missing required field `days_silent` "
            "- at `$.check_in` (at `$.check_in` the keys are: enabled, days_silent)",
        ),
        (
            'version = 1\n[check_in]\ndays_silent = "90"',
            "Expected `int`, got `str` - at "
            "`$.check_in.days_silent`: allowed a whole number from 1 to 3660",
        ),
        (
            "version = 1\n[check_in]\ndays_silent = 0",
            "Expected `int` >= 1 - at "
            "`$.check_in.days_silent`: allowed a whole number from 1 to 3660",
        ),
        (
            "version = 1\n[check_in]\nenabled = 1\ndays_silent = 9",
            "Expected `bool`, got `int` - at `$.check_in.enabled`: allowed true or false",
        ),
        (
            'version = 1\n[win_back]\nhigh_value = "big"',
            "Invalid enum value 'big' - at "
            "`$.win_back.high_value`: allowed values: 'top_monetary_quintile', 'min_net_spend'",
        ),
        (
            'version = 1\n[win_back]\nhigh_value = "min_net_spend"',
            '$.win_back.min_net_spend is required by high_value = "min_net_spend"',
        ),
        (
            "version = 1\n[large_purchase_visit]\ndays_after = 1\nmin_amount = 5000",
            "Expected "
            "`str`, got `int` - at `$.large_purchase_visit.min_amount`: allowed an amount as a "
            'string of digits, such as "5000.00"',
        ),
        (
            'version = 1\n[large_purchase_visit]\ndays_after = 1\nmin_amount = "1.001"',
            "$.large_purchase_visit.min_amount: CNY allows at most 2 decimal places (got '1.001')",
        ),
        (
            'version = 1\n[large_purchase_visit]\ndays_after = 1\nmin_amount = "1"\ncurrency = "cny"',
            "at `$.large_purchase_visit.currency`: allowed a three-letter currency code in capitals",
        ),
        (
            'version = 1\n[large_purchase_visit]\ndays_after = 1\nmin_amount = "1"\ncurrency = "XXX"',
            "$.large_purchase_visit.currency: 'XXX' is not a supported currency; allowed: AED, AUD",
        ),
        (
            'version = 1\n[holiday_greeting]\ndays_ahead = 1\nholidays = [{date = "1 Jan", '
            'name = "元旦"}]',
            "Invalid RFC3339 encoded date - at "
            "`$.holiday_greeting.holidays[0].date`: allowed a TOML date such as 2026-02-17",
        ),
        (
            "version = 1\n[holiday_greeting]\ndays_ahead = 1\nholidays = [{date = 2026-01-01, "
            'title = "元旦"}]',
            "Object contains unknown field `title` - at "
            "`$.holiday_greeting.holidays[0]`; allowed keys: date, name",
        ),
    ],
)
def test_a_bad_file_is_an_error_naming_the_path_and_what_it_takes(text: str, message: str) -> None:
    with pytest.raises(CareRulesError) as raised:
        parse_rules(text, "f.toml")
    assert str(raised.value).startswith("f.toml: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("version = 1\nx = " + "[" * 100_000 + "]" * 100_000, id="deep array"),
        pytest.param("version = 1\nx = " + "{a = " * 5_000 + "1" + "}" * 5_000, id="deep table"),
        pytest.param("version = 1\ncatch_up_days = " + "9" * 5_000, id="5000-digit integer"),
    ],
)
def test_a_hostile_file_is_an_error_naming_the_file_never_a_crash(text: str) -> None:
    with pytest.raises(CareRulesError, match=r"^f\.toml: not valid TOML: "):
        parse_rules(text, "f.toml")


def test_a_path_holding_a_nul_is_an_error_naming_it() -> None:
    with pytest.raises(CareRulesError, match="cannot read the care rules"):
        load_rules("rules\x00.toml")
