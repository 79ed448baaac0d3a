"""The sales pipeline a store works with: its open stages in order, each with a label and a win
probability, and the labels of the two ways an opportunity closes (won, lost).

A store keeps its pipeline as a setting (:mod:`crm_es.store.pipeline_setting`); one that never
set one works with :data:`DEFAULT_PIPELINE`, the seeds' 线索 → 需求确认 → 方案报价 → 谈判 →
赢单/输单. Stage keys are short, stable ASCII words stored in every opportunity event: labels and
probabilities may change later, keys should not (an event's stage that the pipeline no longer
lists is still reported, after the listed ones). The decider stamps the stage's probability on the
event it records, so a weighted forecast of a past date stays what it was. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from crm_es.domain.errors import InvalidValue

WON: Final = "won"
LOST: Final = "lost"
CLOSED: Final = (WON, LOST)
MAX_STAGES: Final = 20

STAGE_KEY_PATTERN: Final = r"^[a-z][a-z0-9_]{0,31}\Z"
StageKey = Annotated[str, Meta(pattern=STAGE_KEY_PATTERN)]
"""A stage key: lower-case ASCII letters, digits and ``_``, a letter first, ≤ 32 characters."""
_STAGE_KEY: Final = re.compile(STAGE_KEY_PATTERN)
Label = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]*\Z")]
Percent = Annotated[int, Meta(ge=0, le=100)]


class Stage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: StageKey
    label: Label
    probability: Percent  # the chance, in percent, that an opportunity at this stage is won


class Pipeline(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The open stages in the order an opportunity moves through them, and the closing labels."""

    stages: Annotated[list[Stage], Meta(min_length=1, max_length=MAX_STAGES)]
    won_label: Label = "赢单"
    lost_label: Label = "输单"

    def __post_init__(self) -> None:
        keys = [s.key for s in self.stages]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"stage {twice[0]!r} is listed twice")
        closing = [k for k in keys if k in CLOSED]
        if closing:
            raise ValueError(
                f"{closing[0]!r} is how an opportunity closes, not an open stage "
                "(win_opportunity and lose_opportunity close it)"
            )

    @property
    def keys(self) -> list[str]:
        """The open stage keys, in order."""
        return [s.key for s in self.stages]

    def stage(self, key: str) -> Stage | None:
        """The open stage ``key`` (None for a closing or unknown key)."""
        return next((s for s in self.stages if s.key == key), None)

    def open_stage(self, key: str | None, field: str = "stage") -> Stage:
        """The open stage ``key`` (the first for None); InvalidValue naming the allowed keys."""
        if key is None:
            return self.stages[0]
        found = self.stage(key)
        if found is not None:
            return found
        allowed = ", ".join(self.keys)
        if key in CLOSED:
            verb = "win_opportunity" if key == WON else "lose_opportunity"
            why = f"an opportunity is {key} by {verb}, not moved there; open stages: {allowed}"
        else:
            why = f"not a stage of this store's pipeline; one of: {allowed}"
        raise InvalidValue(field, key, why)

    def label(self, key: str) -> str:
        """A stage's label (a closing outcome's too); an unlisted key is its own label."""
        if key == WON:
            return self.won_label
        if key == LOST:
            return self.lost_label
        found = self.stage(key)
        return found.label if found is not None else key

    def rank(self, key: str) -> int | None:
        """The position of an open stage (0 first); won after every open stage; None for lost
        and for keys the pipeline does not list."""
        if key == WON:
            return len(self.stages)
        return next((i for i, s in enumerate(self.stages) if s.key == key), None)


DEFAULT_PIPELINE: Final = Pipeline(
    stages=[
        Stage("lead", "线索", 10),
        Stage("qualified", "需求确认", 25),
        Stage("proposal", "方案报价", 50),
        Stage("negotiation", "谈判", 75),
    ]
)
"""The pipeline of a store that never set one (the seeds' stages)."""

_decoder: Final = msgspec.json.Decoder(Pipeline)


def is_stage_key(key: str) -> bool:
    """Whether ``key`` could be a stage key of some pipeline (an open stage or won/lost)."""
    return _STAGE_KEY.match(key) is not None


def parse_pipeline(data: bytes | str) -> Pipeline:
    """A pipeline from its JSON form (``{"stages": [{"key": "lead", "label": "线索",
    "probability": 10}, …], "won_label": "赢单", "lost_label": "输单"}``); InvalidValue with
    the ``$.path`` and the rule broken."""
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as e:
        raise InvalidValue("pipeline", _short(data), _explained(str(e))) from None
    except msgspec.DecodeError as e:
        raise InvalidValue("pipeline", _short(data), f"not JSON: {e}") from None


def pipeline_json(pipeline: Pipeline) -> str:
    return msgspec.json.encode(pipeline).decode()


def _short(data: bytes | str) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text if len(text) <= 60 else text[:57] + "..."


def _explained(error: str) -> str:
    """msgspec's words, with the rule of a stage key in words instead of its pattern."""
    if "matching regex" in error and error.endswith(".key`"):
        rule = "a stage key is lower-case ASCII letters, digits and _, a letter first, ≤ 32 long"
        return f"{rule} - at {error.rsplit(' - at ', 1)[-1]}"
    return error
