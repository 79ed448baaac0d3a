"""The JSON wire format: design §4's examples decode, and schema errors carry msgspec's $.path."""

from __future__ import annotations

import msgspec
import pytest

from crm_es.domain import commands as cmd
from tests.helpers.wire import DESIGN_EXAMPLES


@pytest.mark.parametrize("line", DESIGN_EXAMPLES)
def test_every_design_example_decodes_to_its_command(line: str) -> None:
    command = cmd.decode_command(line)
    assert cmd.command_type_name(command) == msgspec.json.decode(line)["type"]


def test_one_name_per_concept_from_command_class_to_wire_type() -> None:
    assert cmd.command_type_name(cmd.RecordPurchase) == "record_purchase"
    assert set(cmd.COMMAND_TYPES) >= {"register_customer", "erase_personal_data"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"type":"grant_points","customer":"C-1","points":-5}',
            "Expected `int` >= 1 - at `$.points`",
        ),
        (
            '{"type":"answer_survey","customer":"C-1","survey_id":"S","metric":"csat","score":"5"}',
            "at `$.score`",
        ),
        (
            '{"type":"record_purchase","customer":"C-1","order_id":"O","amount":"1","currency":"cny"}',
            "at `$.currency`",
        ),
        (
            '{"type":"record_purchase","customer":"C-1","order_id":"O","amount":"1","currency":"CNY",'
            '"occurred_at":"2026-01-05T10:00:00"}',
            "timezone",
        ),
        (
            '{"type":"record_purchase","customer":"C-1","order_id":"O","amount":"1","currency":"CNY",'
            '"items":[{"sku":"A","quantity":0}]}',
            "at `$.items[0].quantity`",
        ),
        (
            '{"type":"log_contact","customer":"C-1","channel":"pigeon","direction":"inbound"}',
            "at `$.channel`",
        ),
        (
            '{"type":"log_contact","customer":"C-1","channel":"phone","direction":"inbound","x":1}',
            "unknown field `x`",
        ),
        ('{"type":"no_such_command"}', "at `$.type`"),
        ('{"customer":"C-1"}', "missing required field `type`"),
        (
            '{"type":"log_contact","customer":"","channel":"phone","direction":"inbound"}',
            "at `$.customer`",
        ),
        (
            '{"type":"log_contact","customer":"C-1","channel":"phone","direction":"inbound",'
            '"summary":"bad\\u0000byte"}',
            "at `$.summary`",
        ),
    ],
)
def test_schema_errors_name_the_path(line: str, message: str) -> None:
    with pytest.raises(
        msgspec.ValidationError,
        match=message.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]"),
    ):
        cmd.decode_command(line)


def test_huge_strings_are_rejected_by_the_schema() -> None:
    line = msgspec.json.encode(
        {
            "type": "log_contact",
            "customer": "C-1",
            "channel": "phone",
            "direction": "inbound",
            "summary": "x" * 5000,
        }
    )
    with pytest.raises(msgspec.ValidationError, match=r"at `\$.summary`"):
        cmd.decode_command(line)


def test_garbled_json_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        cmd.decode_command(b'{"type": "log_contact", ')
