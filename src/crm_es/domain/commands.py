"""Every command, as msgspec Structs: the public wire format of the Python API and ``crm-es exec``.

A command is a JSON object tagged by ``type`` (the snake_case command name). Unknown fields are
rejected, text fields are bounded and may not hold control characters, and times must carry an
offset, so schema errors surface here with msgspec's ``$.path`` before any domain code runs.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec
from msgspec import UNSET, Meta, UnsetType

from crm_es.domain.command_base import Command as Command
from crm_es.domain.command_base import CustomerCommand as CustomerCommand
from crm_es.domain.command_errors import explained
from crm_es.domain.command_fields import (
    Amount,
    Currency,
    Id,
    LongText,
    Points,
    Score,
    Text,
)
from crm_es.domain.goal_commands import CloseGoal as CloseGoal
from crm_es.domain.goal_commands import PlanCommand as PlanCommand
from crm_es.domain.goal_commands import ReviseGoal as ReviseGoal
from crm_es.domain.goal_commands import SetGoal as SetGoal
from crm_es.domain.values import (
    MAX_QUANTITY,
    CareKind,
    Category,
    Channel,
    CustomerKind,
    Direction,
    LawfulBasis,
    Metric,
    ServiceKind,
    ServicePhase,
    Severity,
)


class RegisterCustomer(Command, frozen=True, kw_only=True, tag="register_customer"):
    external_ref: Id
    kind: CustomerKind = CustomerKind.INDIVIDUAL
    category: Category = Category.POTENTIAL
    region: Text | None = None
    industry: Text | None = None
    company_size: Text | None = None
    income_band: Text | None = None
    source_channel: Channel | None = None
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    birthday: date | None = None
    owner: Id | None = None
    tags: Annotated[list[Id], Meta(max_length=50)] = []


class UpdateProfile(CustomerCommand, frozen=True, kw_only=True, tag="update_profile"):
    kind: CustomerKind | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    region: Text | UnsetType | None = UNSET
    industry: Text | UnsetType | None = UNSET
    company_size: Text | UnsetType | None = UNSET
    income_band: Text | UnsetType | None = UNSET
    name: Text | UnsetType | None = UNSET
    email: Text | UnsetType | None = UNSET
    phone: Text | UnsetType | None = UNSET
    birthday: date | UnsetType | None = UNSET


class ChangeTags(CustomerCommand, frozen=True, kw_only=True, tag="change_tags"):
    add: Annotated[list[Id], Meta(max_length=50)] = []
    remove: Annotated[list[Id], Meta(max_length=50)] = []


class AssignOwner(CustomerCommand, frozen=True, kw_only=True, tag="assign_owner"):
    owner: Id | None


class ChangeConsent(CustomerCommand, frozen=True, kw_only=True, tag="change_consent"):
    marketing: bool
    lawful_basis: LawfulBasis | None = None


class LogContact(CustomerCommand, frozen=True, kw_only=True, tag="log_contact"):
    channel: Channel
    direction: Direction
    summary: LongText | None = None
    outcome: Text | None = None
    feedback: LongText | None = None
    staff: Id | None = None


class LineItemInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sku: Id
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)] = 1
    name: Text | None = None


class RecordPurchase(CustomerCommand, frozen=True, kw_only=True, tag="record_purchase"):
    order_id: Id
    amount: Amount
    currency: Currency
    items: Annotated[list[LineItemInput], Meta(max_length=1000)] = []
    product_category: Text | None = None
    channel: Channel | None = None
    staff: Id | None = None


class RefundPurchase(CustomerCommand, frozen=True, kw_only=True, tag="refund_purchase"):
    order_id: Id
    amount: Amount | None = None  # default: everything still refundable on the order
    currency: Currency | None = None  # must match the order's currency when given


class RecordService(CustomerCommand, frozen=True, kw_only=True, tag="record_service"):
    phase: ServicePhase
    kind: ServiceKind
    summary: LongText | None = None
    order_id: Id | None = None
    staff: Id | None = None


class OpenOpportunity(CustomerCommand, frozen=True, kw_only=True, tag="open_opportunity"):
    opportunity_id: Id
    title: Text
    amount: Amount
    currency: Currency
    expected_close_on: date | None = None
    owner: Id | None = None  # staff id; default: the customer's owner
    source: Id | None = None  # where the lead came from, a short code (referral, fair, web)
    stage: Id | None = None  # an open stage of the store's pipeline; default: its first


class AdvanceOpportunity(CustomerCommand, frozen=True, kw_only=True, tag="advance_opportunity"):
    opportunity_id: Id
    stage: Id  # an open stage; winning and losing have commands of their own


class WinOpportunity(CustomerCommand, frozen=True, kw_only=True, tag="win_opportunity"):
    opportunity_id: Id
    order_id: Id | None = None  # the order it became, when recorded already


class LoseOpportunity(CustomerCommand, frozen=True, kw_only=True, tag="lose_opportunity"):
    opportunity_id: Id
    lost_reason: Id  # a short code the report groups by (price, competitor, no_budget)
    note: LongText | None = None


class FileComplaint(CustomerCommand, frozen=True, kw_only=True, tag="file_complaint"):
    complaint_id: Id
    category: Text
    severity: Severity
    channel: Channel | None = None
    description: LongText | None = None


class EscalateComplaint(CustomerCommand, frozen=True, kw_only=True, tag="escalate_complaint"):
    complaint_id: Id
    escalated_to: Id | None = None


class ResolveComplaint(CustomerCommand, frozen=True, kw_only=True, tag="resolve_complaint"):
    complaint_id: Id
    resolution: Text
    compensation: Amount | None = None
    compensation_currency: Currency | None = None


class ReopenComplaint(CustomerCommand, frozen=True, kw_only=True, tag="reopen_complaint"):
    complaint_id: Id


class FollowUpComplaint(CustomerCommand, frozen=True, kw_only=True, tag="follow_up_complaint"):
    complaint_id: Id
    satisfied: bool
    note: LongText | None = None


class AnswerSurvey(CustomerCommand, frozen=True, kw_only=True, tag="answer_survey"):
    survey_id: Id
    metric: Metric
    score: Score | None = None
    expectation: Score | None = None
    performance: Score | None = None
    scale_min: Score | None = None  # default: the metric's usual scale
    scale_max: Score | None = None
    comment: LongText | None = None
    channel: Channel | None = None
    # The factor the answer rates (product_quality, delivery, …): one of the store's survey
    # topics, checked by the decider, which names the allowed ones (domain/survey_topics.py);
    # none for an overall answer. Unset, it is not encoded, so answers sent before topics
    # existed keep their idempotency hashes.
    topic: Id | UnsetType | None = UNSET


class GrantPoints(CustomerCommand, frozen=True, kw_only=True, tag="grant_points"):
    points: Points
    expires_on: date | None = None
    # Named ``reason`` on the wire (design §4); stored as ``grant_reason`` on the event because the
    # envelope already has a ``reason`` (why the command was issued).
    reason: Text | None = None


class RedeemPoints(CustomerCommand, frozen=True, kw_only=True, tag="redeem_points"):
    points: Points
    reward: Text | None = None


class ExpirePoints(CustomerCommand, frozen=True, kw_only=True, tag="expire_points"):
    """Expire every lot whose ``expires_on`` is before the command's business date."""


class ReviewTier(CustomerCommand, frozen=True, kw_only=True, tag="review_tier"):
    """Record the tier the rolling 12-month rule gives as of the command's business time, when
    it differs from the last one recorded (a downgrade as old orders leave the window)."""


class ScheduleCareTask(CustomerCommand, frozen=True, kw_only=True, tag="schedule_care_task"):
    task_id: Id
    kind: CareKind
    due_on: date
    channel: Channel | None = None
    staff: Id | None = None
    note: LongText | None = None


class CompleteCareTask(CustomerCommand, frozen=True, kw_only=True, tag="complete_care_task"):
    task_id: Id
    outcome: Text | None = None
    note: LongText | None = None


class CancelCareTask(CustomerCommand, frozen=True, kw_only=True, tag="cancel_care_task"):
    task_id: Id


class ChurnCustomer(CustomerCommand, frozen=True, kw_only=True, tag="churn_customer"):
    churn_reason: Text


class WinBackCustomer(CustomerCommand, frozen=True, kw_only=True, tag="win_back_customer"):
    pass


class ErasePersonalData(CustomerCommand, frozen=True, kw_only=True, tag="erase_personal_data"):
    requested_by: Id
    legal_basis: Text | None = None


class MergeCustomers(CustomerCommand, frozen=True, kw_only=True, tag="merge_customers"):
    into: Id  # the survivor (UUID or ref); ``customer`` is closed (domain/decide/merges.py)


AnyCommand = (
    RegisterCustomer
    | UpdateProfile
    | ChangeTags
    | AssignOwner
    | ChangeConsent
    | LogContact
    | RecordPurchase
    | RefundPurchase
    | RecordService
    | OpenOpportunity
    | AdvanceOpportunity
    | WinOpportunity
    | LoseOpportunity
    | FileComplaint
    | EscalateComplaint
    | ResolveComplaint
    | ReopenComplaint
    | FollowUpComplaint
    | AnswerSurvey
    | GrantPoints
    | RedeemPoints
    | ExpirePoints
    | ReviewTier
    | ScheduleCareTask
    | CompleteCareTask
    | CancelCareTask
    | ChurnCustomer
    | WinBackCustomer
    | ErasePersonalData
    | MergeCustomers
    | SetGoal
    | ReviseGoal
    | CloseGoal
)


def command_type_name(command: Command | type[Command]) -> str:
    """The wire ``type`` of a command: its explicit, stable tag (never derived from the class
    name, so renaming a class changes neither the wire format nor stored idempotency hashes)."""
    cls = command if isinstance(command, type) else type(command)
    return str(cls.__struct_config__.tag)


COMMAND_TYPES: dict[str, type[Command]] = {
    command_type_name(cls): cls for cls in AnyCommand.__args__
}
"""Wire ``type`` -> command class."""

# Built once: decoding is the hot path of ``crm-es exec`` and imports.
_json_decoder: Final = msgspec.json.Decoder(AnyCommand)


def decode_command(data: bytes | str) -> Command:
    """Decode one JSON command; schema errors raise ``msgspec.ValidationError`` with ``$.path``.
    Its text is taken in Unicode NFC, so ids typed with composed or decomposed accents match."""
    try:
        if not data.isascii():
            data = nfc(data.decode() if isinstance(data, bytes) else data)
        command: Command = _json_decoder.decode(data)  # typed whatever the stubs say it is
        return command
    except msgspec.ValidationError as e:
        raise explained(e, COMMAND_TYPES, data) from None
    except UnicodeDecodeError as e:  # msgspec's error for invalid UTF-8 inside a JSON string
        raise msgspec.DecodeError(f"JSON is malformed: not valid UTF-8 ({e})") from None
    except msgspec.DecodeError as e:
        if str(e) == "Input data was truncated":  # msgspec's words for an unfinished line
            msg = "JSON is malformed: the line ends inside an object or a string"
            raise msgspec.DecodeError(msg) from None
        raise
    except RecursionError:  # objects nested deeper than Python's stack
        raise msgspec.DecodeError("JSON is nested too deeply to be a command") from None


def command_from_fields(command_type: type[Command], fields: dict[str, Any]) -> Command:
    """Build and validate a command from Python values (the API's keyword arguments); money
    may be given as a ``Decimal`` or an ``int`` too."""
    money = {k: _money_text(v) for k, v in fields.items() if k in _MONEY_FIELDS}
    texts = {k: nfc(v) for k, v in fields.items() if isinstance(v, str) and not v.isascii()}
    try:
        return msgspec.convert(fields | money | texts if money or texts else fields, command_type)
    except msgspec.ValidationError as e:
        raise explained(e, COMMAND_TYPES, _typed(command_type)) from None


_MONEY_FIELDS: Final = frozenset({"amount", "compensation"})


def _money_text(value: Any) -> Any:
    """A Decimal or int as the decimal string the schema takes (anything else as given, for
    the schema to refuse: a float is binary floating point, never money)."""
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C (ASCII, the common case, as it is)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def validate_command(command: Command) -> Command:
    """Check a Struct built in Python against its declared constraints (raises ValidationError)."""
    try:
        return msgspec.convert(msgspec.to_builtins(command), type(command))
    except msgspec.ValidationError as e:
        raise explained(e, COMMAND_TYPES, _typed(type(command))) from None


def _typed(command_type: type[Command]) -> str:
    """A JSON object naming ``command_type``, for :func:`explained` to find the fields by."""
    return msgspec.json.encode({"type": command_type_name(command_type)}).decode()
