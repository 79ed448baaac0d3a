"""Hostile input through ``crm-es exec`` and the Python API: a clear error, nothing stored, and
the process keeps going; SQL metacharacters are ordinary text, stored and read back verbatim.

Every test runs on SQLite and PostgreSQL. "Nothing stored" is checked against the store itself:
``crm.recorder.max_notification_id()`` before and after, and the notifications appended since.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_es import CRM, CrmError
from crm_es.cli import main
from crm_es.domain import commands as cmd
from crm_es.domain.events import CustomerEvent

SQL_TEXTS = ("'; DROP TABLE crm_events; --", '" OR 1=1')
MEGABYTE = "x" * 1_000_000

# A valid life of one customer touching every command type (text fields are filled in by
# ``with_texts``); each entry holds only the non-text fields its command requires.
LIFE: list[dict[str, Any]] = [
    {"type": "register_customer", "birthday": "1990-06-05", "kind": "company"},
    {"type": "update_profile", "category": "signed"},
    {"type": "change_tags"},
    {"type": "assign_owner"},
    {"type": "change_consent", "marketing": True},
    {"type": "log_contact", "channel": "phone", "direction": "inbound"},
    {"type": "record_purchase", "amount": "129.90", "currency": "CNY"},
    {"type": "refund_purchase", "amount": "10", "currency": "CNY"},
    {"type": "record_service", "phase": "after-sale", "kind": "maintenance"},
    {"type": "file_complaint", "severity": "high", "channel": "email"},
    {"type": "escalate_complaint"},
    {"type": "resolve_complaint", "compensation": "5", "compensation_currency": "CNY"},
    {"type": "follow_up_complaint", "satisfied": False},
    {"type": "reopen_complaint"},
    {"type": "answer_survey", "metric": "csat", "score": 4},
    {
        "type": "grant_points",
        "points": 100,
        "expires_on": "2025-06-30",
        "occurred_at": "2025-01-01T00:00:00+00:00",
    },
    {"type": "redeem_points", "points": 30, "occurred_at": "2025-02-01T00:00:00+08:00"},
    {"type": "expire_points"},
    {"type": "schedule_care_task", "kind": "return_visit", "due_on": "2026-01-01"},
    {"type": "complete_care_task"},
    {"type": "schedule_care_task", "kind": "check_in", "due_on": "2026-02-01", "task_id": "2"},
    {"type": "cancel_care_task", "task_id": "2"},
    {"type": "churn_customer"},
    {"type": "win_back_customer"},
    {"type": "open_opportunity", "amount": "1000.00", "currency": "CNY"},
    {"type": "advance_opportunity", "stage": "proposal"},
    {"type": "win_opportunity"},  # as the order above
    {"type": "open_opportunity", "amount": "5", "currency": "CNY", "opportunity_id": "2"},
    {"type": "lose_opportunity", "opportunity_id": "2"},
]
ERASE: dict[str, Any] = {"type": "erase_personal_data"}
LINKS = {"order_id", "complaint_id", "task_id", "opportunity_id"}
# Codes checked against the store's settings (its pipeline's stages, its survey topics): kept
# as the entry gives them (or left out) in the stored lives, as hostile text they are refused.
SETTINGS_CODES = {"stage", "topic"}


def _text_fields(command_type: str) -> dict[str, str]:
    """Field name -> "text", "list" or "items" for every free-text or id field of a command
    (enums, currencies, money, numbers and dates are not text)."""
    fields: dict[str, str] = {}
    for field in mi.type_info(cmd.COMMAND_TYPES[command_type]).fields:
        kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        for kind in kinds:
            money = field.name in ("amount", "compensation")
            if (
                isinstance(kind, mi.StrType)
                and "[A-Z]{3}" not in (kind.pattern or "")
                and not money
            ):
                fields[field.name] = "text"
            elif isinstance(kind, mi.ListType):
                fields[field.name] = "items" if field.name == "items" else "list"
    return fields


def with_texts(entry: dict[str, Any], marker: str, number: int) -> dict[str, Any]:
    """``entry`` with every text field set to ``marker``, the field name and the command's
    number (unique, so each value can be found again); ids that link commands (order, complaint,
    care task) and the customer ref share one value."""
    out = dict(entry)
    for field, kind in _text_fields(entry["type"]).items():
        if field in ("actor", "on_behalf_of"):  # who sends it: the principal, not a text
            continue
        if field in SETTINGS_CODES:
            continue
        if field in ("customer", "external_ref"):
            value = marker
        elif field in LINKS:
            value = f"{marker} {field}" + (f" {entry[field]}" if field in entry else "")
        else:
            value = f"{marker} {field} #{number}"
        if kind == "list":
            out[field] = [f"{marker} tags #0"] if field == "remove" else [value]
        elif kind == "items":
            out[field] = [{"sku": f"{marker} sku #{number}", "name": f"{marker} item #{number}"}]
        else:
            out[field] = value
    return out


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a builtins structure."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings(v)


def head(crm: CRM) -> int:
    return crm.recorder.max_notification_id() or 0


def stored_since(crm: CRM, position: int) -> list[CustomerEvent]:
    notifications = crm.recorder.select_notifications(start=position + 1, limit=100_000)
    return [crm.mapper.to_domain_event(n) for n in notifications]


def run_exec(url: str, lines: list[bytes], *extra: str) -> tuple[Result, list[dict[str, Any]]]:
    result = CliRunner().invoke(main, ["--db", url, "exec", *extra, "-"], input=b"\n".join(lines))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"exec crashed: {result.exception!r}\n{result.output}"
    )
    # Split on "\n" only: str.splitlines() would also split inside an echoed U+0085 or U+2028.
    return result, [json.loads(line) for line in result.stdout_bytes.split(b"\n") if line]


def assert_read_back(crm: CRM, marker: str, commands: list[dict[str, Any]]) -> None:
    """Each command's text values are in its stored events, exactly (read from the store)."""
    events = list(crm.history(marker))  # the hostile external ref resolves like any other
    for command in commands:
        produced = [e for e in events if e.command_id == command["command_id"]]
        assert produced, f"nothing stored for {command['type']}"
        found = set(strings([msgspec.to_builtins(e) for e in produced]))
        expected = {
            text
            for field in _text_fields(command["type"])
            if field in command and field != "customer"
            for text in strings(command[field])
        }
        assert expected, command
        assert expected <= found, f"{command['type']}: {expected - found} not read back"


# --- SQL metacharacters are text ---------------------------------------------------------------


def test_sql_metacharacters_in_every_text_field_are_stored_and_read_back_verbatim(
    store_url: str,
) -> None:
    by_exec, by_api = SQL_TEXTS
    exec_life = [with_texts(e, by_exec, i) for i, e in enumerate(LIFE)]
    api_life = [with_texts(e, by_api, i) for i, e in enumerate(LIFE)]
    result, outputs = run_exec(store_url, [json.dumps(c).encode() for c in exec_life])
    assert result.exit_code == 0, result.output
    assert all(o["ok"] for o in outputs) and len(outputs) == len(exec_life)
    with CRM(store_url) as crm:
        for command in api_life:
            fields = {k: v for k, v in command.items() if k != "type"}
            assert getattr(crm, command["type"])(**fields).events >= 1
    with CRM(store_url) as fresh:  # nothing cached: everything comes back from the store
        for marker, life in ((by_exec, exec_life), (by_api, api_life)):
            assert_read_back(fresh, marker, life)
            customer = fresh.get_customer(marker)
            assert customer.external_ref == marker
            assert customer.name == f"{marker} name #1"  # update_profile is command #1
            assert customer.email == f"{marker} email #1"
            assert customer.tags == [f"{marker} add #2"]
            assert list(customer.orders) == [f"{marker} order_id"]
            erase = with_texts(ERASE, marker, 99)
            fresh.execute(cmd.decode_command(json.dumps(erase)))
            assert_read_back(fresh, marker, [erase])
            assert fresh.get_customer(marker).erased
        # The tables the metacharacters name are intact and still hold everything.
        assert len(list(fresh.history(by_exec))) > len(LIFE)
        assert len(list(fresh.history(by_api))) > len(LIFE)


# --- control characters, bad values, bad JSON --------------------------------------------------


def _control_cases() -> list[tuple[bytes, str]]:
    """(line, expected $.path) for NUL or ESC in every text field of every command type."""
    cases: list[tuple[bytes, str]] = []
    for number, entry in enumerate([*LIFE, ERASE]):
        valid = with_texts(entry, "C-1", number)
        for i, (field, kind) in enumerate(_text_fields(entry["type"]).items()):
            bad_char = "\x00" if i % 2 == 0 else "\x1b"
            bad = dict(valid)
            if kind == "list":
                bad[field], path = [f"a{bad_char}b"], f"$.{field}[0]"
            elif kind == "items":
                bad[field], path = [{"sku": "A", "name": f"a{bad_char}"}], "$.items[0].name"
            else:
                bad[field], path = f"a{bad_char}b", f"$.{field}"
            cases.append((json.dumps(bad).encode(), path))
    return cases


CONTROL_CASES = _control_cases()

VALID_GRANT = b'{"type":"grant_points","customer":"C-1","points":7}'


def _purchase(amount: Any, currency: Any = "CNY", **more: Any) -> bytes:
    body = {"type": "record_purchase", "customer": "C-1", "order_id": "O-x", "amount": amount}
    return json.dumps({**body, "currency": currency, **more}).encode()


def _grant(**more: Any) -> bytes:
    return json.dumps({"type": "grant_points", "customer": "C-1", "points": 5, **more}).encode()


# (line, a fragment the error must contain)
BAD_LINES: list[tuple[bytes, str]] = [
    (b'{"type":"grant_points","customer":"C-1","poi', "line ends inside an object"),
    (b'{"type":"grant_points",,"customer":"C-1"}', "JSON is malformed"),
    (b'{"type":"grant_points","customer":"C-1","points":5}}', "trailing characters"),
    (b"\xef\xbb\xbf" + VALID_GRANT, "JSON is malformed"),
    (b"[1, 2, 3]", "Expected `object`, got `array`"),
    (b"null", "Expected `object`, got `null`"),
    (b"{}", "missing required field `type`"),
    (b'{"type":"drop_table_crm_events"}', "Invalid value 'drop_table_crm_events' - at `$.type`"),
    (_grant(pointz=5), "unknown field `pointz`"),
    (_grant(points="5"), "Expected `int`, got `str` - at `$.points`"),
    (_grant(points=5.5), "Expected `int`, got `float` - at `$.points`"),
    (_grant(points=True), "Expected `int`, got `bool` - at `$.points`"),
    (_grant(points=10**30), "at `$.points`"),
    (_grant(points=0), "Expected `int` >= 1 - at `$.points`"),
    (_grant(customer=7), "Expected `str`, got `int` - at `$.customer`"),
    (_grant(expires_on="tomorrow"), "at `$.expires_on`"),
    (_grant(reason=MEGABYTE), "length <= 200 - at `$.reason`"),
    (_grant(command_id=MEGABYTE), "length <= 128 - at `$.command_id`"),
    (_grant(customer=""), "at `$.customer`"),
    (_grant(customer="   "), "at `$.customer`"),
    (
        json.dumps(
            {
                "type": "log_contact",
                "customer": "C-1",
                "channel": "phone",
                "direction": "inbound",
                "summary": MEGABYTE,
            }
        ).encode(),
        "length <= 4000 - at `$.summary`",
    ),
    (_grant(x=json.loads("[" * 500 + "]" * 500)), "unknown field `x`"),
    (_purchase("NaN"), "at `$.amount`: money is a decimal string"),
    (_purchase("Infinity"), "at `$.amount`: money is a decimal string"),
    (_purchase("-Infinity"), "at `$.amount`: money is a decimal string"),
    (_purchase("sNaN"), "at `$.amount`: money is a decimal string"),
    (_purchase("-0.01"), "at `$.amount`: money is a decimal string"),
    (_purchase("129.905"), "CNY allows at most 2 decimal places"),
    (_purchase("100.0000000000000000000000000000001"), "CNY allows at most 2 decimal places"),
    (_purchase("0.5", "JPY"), "JPY allows at most 0 decimal places"),
    (_purchase("1e400"), "at `$.amount`: money is a decimal string"),
    (_purchase("1" * 39), "implausibly large"),
    (_purchase("0." + "0" * 30 + "1"), "CNY allows at most 2 decimal places"),
    (_purchase(1e300), "got `float` - at `$.amount`"),  # a JSON number, not a string
    (_purchase(129.9), "got `float` - at `$.amount`"),
    (_purchase("12,50"), "at `$.amount`: money is a decimal string"),
    (_purchase("１２９.９０"), "at `$.amount`: money is a decimal string"),
    (_purchase(["1"]), "at `$.amount`"),
    (_purchase("1.00", "XXX"), "'XXX'"),
    (_purchase("1.00", "cny"), "at `$.currency`"),
    (_purchase("1.00", "CNY", items=[{"sku": "A", "quantity": 0}]), "at `$.items[0].quantity`"),
    (_grant(occurred_at="9999-12-31T23:59:59+00:00"), "business time is in the future"),
    (_grant(occurred_at="9999-12-31T23:59:59-14:00"), "business time is in the future"),
    (_grant(occurred_at="2030-01-01T00:00:00Z"), "business time is in the future"),
    (_grant(occurred_at="2025-01-01T10:00:00"), "timezone component - at `$.occurred_at`"),
    (_grant(occurred_at="1899-12-31T23:59:59+00:00"), "before 1900"),
    (_grant(occurred_at="0001-01-01T00:00:00+14:00"), "before 1900"),
    (_grant(occurred_at="10000-01-01T00:00:00Z"), "at `$.occurred_at`"),
    (_grant(occurred_at="2025-02-30T00:00:00Z"), "at `$.occurred_at`"),
    (_grant(occurred_at=1735689600), "at `$.occurred_at`"),
    (b'{"type":"grant_points","customer":"C-\xff\xfe","points":5}', "UTF-8"),
    (b'{"type":"grant_points","customer":"C-1","points":5,"reason":"\xc3"}', "UTF-8"),
    (b'{"type":"grant_points","customer":"C-1","points":5}\xff', "JSON is malformed"),
    (b'{"type":"register_customer","external_ref":"C-9","name":"a\\udfffb"}', "surrogate"),
    (b'{"type":"redeem_points","customer":"C-1","points":999999}', "only"),
    (b'{"type":"grant_points","customer":"nobody","points":5}', "'nobody' not found"),
]


@pytest.fixture
def url_with_customer(store_url: str) -> str:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", name="Ann")
        crm.grant_points(customer="C-1", points=10)
    return store_url


def test_bad_exec_lines_each_get_a_clear_error_store_nothing_and_the_next_line_runs(
    url_with_customer: str,
) -> None:
    url = url_with_customer
    lines = [line for line, _ in BAD_LINES] + [line for line, _ in CONTROL_CASES]
    expected = [fragment for _, fragment in BAD_LINES] + [
        f"at `{path}`" for _, path in CONTROL_CASES
    ]
    with CRM(url) as crm:
        before = head(crm)
    result, outputs = run_exec(url, [*lines, VALID_GRANT])
    assert result.exit_code == 1  # some lines failed
    assert len(outputs) == len(lines) + 1  # one result per line, in order
    for number, (output, fragment, line) in enumerate(
        zip(outputs, expected, lines, strict=False), start=1
    ):
        assert output["ok"] is False, (number, line[:120], output)
        assert output["line"] == number
        assert fragment in output["error"], (line[:120], output["error"])
        assert len(output["error"]) < 600, "an error message echoes the whole input"
    assert outputs[-1]["ok"] is True and outputs[-1]["version"] == 3
    assert "Traceback" not in result.output
    with CRM(url) as crm:
        new = stored_since(crm, before)
        assert [type(e).__name__ for e in new] == ["PointsGranted"]  # only the valid line
        assert crm.get_customer("C-1").points_balance == 17


def test_bad_commands_through_the_python_api_raise_a_clear_error_and_store_nothing(
    url_with_customer: str,
) -> None:
    with CRM(url_with_customer) as crm:
        before = head(crm)
        for line, fragment in BAD_LINES:
            with pytest.raises((msgspec.ValidationError, msgspec.DecodeError, CrmError)) as info:
                crm.execute(cmd.decode_command(line))
            assert fragment in str(info.value), (line[:120], str(info.value))
        for line, path in CONTROL_CASES:
            fields = json.loads(line)
            method = getattr(crm, fields.pop("type"))
            with pytest.raises(msgspec.ValidationError, match=re.escape(f"at `{path}`")):
                method(**fields)
        keyword_cases: list[tuple[str, dict[str, Any], str]] = [
            ("grant_points", {"points": [1]}, "at `$.points`"),
            ("grant_points", {"points": True}, "at `$.points`"),
            ("grant_points", {"points": -3}, "at `$.points`"),
            ("grant_points", {"points": 1, "pointz": 1}, "unknown field `pointz`"),
            ("grant_points", {"points": 1, "occurred_at": datetime(2025, 1, 1)}, "timezone"),
            ("grant_points", {"points": 1, "occurred_at": "3000-01-01T00:00:00Z"}, "future"),
            ("log_contact", {"channel": "phone", "direction": "in", "summary": "s"}, "direction"),
            (
                "log_contact",
                {"channel": "phone", "direction": "inbound", "summary": MEGABYTE},
                "at `$.summary`",
            ),
            (
                "record_purchase",
                {"order_id": "O", "amount": float("nan"), "currency": "CNY"},
                "money is a decimal string",
            ),
            (
                "record_purchase",
                {"order_id": "O", "amount": Decimal("1e999999999"), "currency": "CNY"},
                "at `$.amount`",
            ),
            ("record_purchase", {"order_id": "O", "amount": "1.5", "currency": "ZZZ"}, "'ZZZ'"),
        ]
        for method_name, fields, fragment in keyword_cases:
            with pytest.raises((msgspec.ValidationError, CrmError)) as info:
                getattr(crm, method_name)(customer="C-1", **fields)
            assert fragment in str(info.value), (method_name, fields, str(info.value))
        # Structs built in Python skip msgspec's checks at construction; execute checks them.
        with pytest.raises(msgspec.ValidationError, match=r"at `\$.summary`"):
            crm.execute(
                cmd.LogContact(customer="C-1", channel="phone", direction="inbound", summary="\x00")
            )
        with pytest.raises(msgspec.ValidationError, match=r"at `\$.points`"):
            crm.execute(cmd.GrantPoints(customer="C-1", points=-5))
        assert head(crm) == before
        assert crm.grant_points(customer="C-1", points=1).version == 3  # still working


# --- mutated valid commands (hypothesis) -------------------------------------------------------

VALID_COMMANDS: list[dict[str, Any]] = [
    {"type": "grant_points", "customer": "C-1", "points": 5, "reason": "welcome"},
    {"type": "redeem_points", "customer": "C-1", "points": 1, "reward": "mug"},
    {
        "type": "record_purchase",
        "customer": "C-1",
        "order_id": "O-1",
        "amount": "19.90",
        "currency": "CNY",
        "items": [{"sku": "A-1", "quantity": 2}],
    },
    {
        "type": "log_contact",
        "customer": "C-1",
        "channel": "phone",
        "direction": "outbound",
        "summary": "回访",
        "occurred_at": "2025-03-01T10:00:00+08:00",
    },
    {
        "type": "answer_survey",
        "customer": "C-1",
        "survey_id": "S-1",
        "metric": "nps",
        "score": 9,
    },
    {
        "type": "file_complaint",
        "customer": "C-1",
        "complaint_id": "K-1",
        "category": "delivery",
        "severity": "low",
    },
    {"type": "register_customer", "external_ref": "C-2", "name": "Bo", "tags": ["vip"]},
]

INTERESTING = st.sampled_from(
    [
        "1e999999999",
        "1e400",
        "NaN",
        "-1",
        "0",
        "-0",
        "1.001",
        "XXX",
        "",
        " ",
        "\x00",
        "'; DROP TABLE crm_events; --",
        "9999-12-31T00:00:00Z",
        "2025-01-01T00:00:00",
        "C-1",
        "O-1",
        2**63,
        -(2**63) - 1,
        1e308,
        0.1,
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | INTERESTING,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    """A valid command with a fresh command_id, then a few mutations of its keys, values or
    bytes: some stay valid, most do not."""
    command = dict(draw(st.sampled_from(VALID_COMMANDS)))
    command["command_id"] = uuid.uuid4().hex
    for _ in range(draw(st.integers(0, 3))):
        keys = sorted(command)
        action = draw(st.sampled_from(["drop", "replace", "rename", "add"]))
        key = draw(st.sampled_from(keys))
        if action == "drop":
            command.pop(key)
        elif action == "replace":
            command[key] = draw(JSON_VALUES)
        elif action == "rename":
            command[draw(st.text(max_size=8))] = command.pop(key)
        else:
            command[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    line = json.dumps(command, ensure_ascii=draw(st.booleans())).encode()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.binary(min_size=1, max_size=4)) + line[at:]
    if draw(st.integers(0, 9)) == 0:
        line = line[: draw(st.integers(0, len(line)))]
    return line


HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_exactly_once(new: list[CustomerEvent], results: list[tuple[str, int]]) -> None:
    """The new events are, per command id, one consecutive run of one stream, and the runs are
    exactly the acknowledged (non-duplicate) commands' results."""
    runs: dict[str | None, list[CustomerEvent]] = {}
    for event in new:
        runs.setdefault(event.command_id, []).append(event)
    assert None not in runs, "an event without a command id"
    ends = []
    for events in runs.values():
        assert len({e.originator_id for e in events}) == 1
        versions = [e.originator_version for e in events]
        assert versions == list(range(versions[0], versions[0] + len(versions)))
        ends.append((str(events[0].originator_id), versions[-1]))
    assert sorted(ends) == sorted(results)


@HYPOTHESIS
@given(line=mutated_lines())
def test_a_mutated_command_is_either_stored_exactly_once_or_rejected_with_nothing_stored(
    crm: CRM, line: bytes
) -> None:
    if crm.recorder.max_notification_id() is None:
        crm.register_customer(external_ref="C-1")
        crm.grant_points(customer="C-1", points=1000)
    before = head(crm)
    try:
        command = cmd.decode_command(line)
        result = crm.execute(command)
    except (msgspec.ValidationError, msgspec.DecodeError, CrmError) as e:
        assert str(e)
        assert head(crm) == before, "a rejected command stored something"
        return
    new = stored_since(crm, before)
    if result.duplicate:
        assert new == []
        return
    # Accepted: its events are stored once, as one consecutive run of its customer's stream.
    assert len(new) == result.events
    versions = list(range(result.version - result.events + 1, result.version + 1))
    assert [e.originator_version for e in new] == versions
    assert {e.originator_id for e in new} <= {result.customer_id}
    assert {e.command_id for e in new} <= {command.command_id}


@settings(HYPOTHESIS, max_examples=20)
@given(lines=st.lists(mutated_lines(), min_size=1, max_size=8))
def test_exec_answers_every_mutated_line_and_stores_exactly_the_acknowledged_ones(
    store_url: str, lines: list[bytes]
) -> None:
    with CRM(store_url) as crm:
        if crm.recorder.max_notification_id() is None:
            crm.register_customer(external_ref="C-1")
            crm.grant_points(customer="C-1", points=1000)
        before = head(crm)
    sentinel = _grant(command_id=uuid.uuid4().hex)
    data = b"\n".join([*lines, sentinel])
    # exec's own framing: one result per non-blank line that does not start with '#'
    counted = [raw.strip() for raw in data.split(b"\n")]
    counted = [raw for raw in counted if raw and not raw.startswith(b"#")]
    # stdin gets no automatic command ids unless asked: every stored event must carry one here
    result, outputs = run_exec(store_url, [data], "--auto-ids")
    assert len(outputs) == len(counted), result.output
    assert outputs[-1]["ok"] is True, outputs[-1]
    assert result.exit_code == (0 if all(o["ok"] for o in outputs) else 1)
    for output in outputs:
        assert output["ok"] or output["error"]
    acknowledged = [
        (o["customer_id"], o["version"]) for o in outputs if o["ok"] and not o.get("duplicate")
    ]
    with CRM(store_url) as crm:
        new = stored_since(crm, before)
    # A result whose events were all no-ops (e.g. an unchanged tag) appended nothing.
    stored_results = [
        r
        for r in acknowledged
        if any(str(e.originator_id) == r[0] and e.originator_version == r[1] for e in new)
    ]
    _check_exactly_once(new, stored_results)
