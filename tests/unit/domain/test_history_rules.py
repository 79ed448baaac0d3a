"""The rules an imported history is judged by (``crm_es.domain.history_rules``): a history the
service could have written passes; one it could not is named at the event that breaks it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from crm_es.domain import events as ev
from crm_es.domain.history_rules import history_problem

CID = uuid4()
START = datetime(2026, 1, 1, tzinfo=UTC)


def stream(*specs: tuple[type[ev.CustomerEvent], int, dict[str, Any]]) -> list[ev.CustomerEvent]:
    """Events of one stream: (class, days after START, fields), versions from 1."""
    out = []
    for version, (cls, days, fields) in enumerate(specs, start=1):
        when = START + timedelta(days=days)
        out.append(cls(originator_id=CID, originator_version=version, recorded_at=when + timedelta(days=400),
                       occurred_at=when, actor="test", **fields))  # fmt: skip
    return out


REGISTERED = (ev.CustomerRegistered, 0, {"external_ref": "C-1"})
GRANT = (ev.PointsGranted, 10, {"lot_id": 2, "points": 100, "expires_on": date(2026, 2, 1)})


def draw(cls: type[ev.CustomerEvent], days: int, **more: Any) -> tuple[Any, int, dict[str, Any]]:
    return (cls, days, {"points": 100, "draws": [ev.PointsDraw(2, 100)], **more})


def test_points_redeemed_and_expired_in_time_pass() -> None:
    assert (
        history_problem(stream(REGISTERED, GRANT, draw(ev.PointsRedeemed, 20, reward="mug")))
        is None
    )
    assert history_problem(stream(REGISTERED, GRANT, draw(ev.PointsExpired, 40))) is None


def test_points_redeemed_from_an_expired_lot_are_refused() -> None:
    found = history_problem(stream(REGISTERED, GRANT, draw(ev.PointsRedeemed, 60, reward="mug")))
    assert found == (3, "points redeemed from lot 2 after it expired")


def test_points_drawn_before_their_grant_or_expired_early_are_refused() -> None:
    early = history_problem(stream(REGISTERED, GRANT, draw(ev.PointsRedeemed, 5, reward="mug")))
    assert early == (3, "points drawn from lot 2 before it was granted")
    soon = history_problem(stream(REGISTERED, GRANT, draw(ev.PointsExpired, 15)))
    assert soon == (3, "lot 2 expired before its expiry date")
