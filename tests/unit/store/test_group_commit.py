"""Group commit: concurrent commands share a transaction, and one that cannot be stored fails
alone, whatever the reason."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError

from crm_es.store.group_commit import GroupCommitter


class Store:
    """Stores events in memory; a batch holding the poison fails as a store would (a value it
    refuses, or a collision), storing nothing of that batch."""

    def __init__(self, error: type[Exception]) -> None:
        self.error, self.saved = error, []
        self.batches: list[int] = []
        self.first = threading.Event()

    def put(self, events: Sequence[Any], records: Sequence[Any], snapshots: Sequence[Any]) -> None:
        self.first.wait(timeout=5)  # the first batch waits, so the others queue behind it
        if "poison" in events:
            raise self.error("refused")
        self.saved.extend(events)
        self.batches.append(len(events))


def commit_concurrently(store: Store) -> dict[str, str]:
    committer = GroupCommitter(store.put)
    outcomes: dict[str, str] = {}

    def one(name: str) -> None:
        try:
            committer.commit([name])
            outcomes[name] = "ok"
        except Exception as e:
            outcomes[name] = type(e).__name__

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b", "poison", "c", "d")]
    for t in threads:
        t.start()
    store.first.set()
    for t in threads:
        t.join(timeout=10)
    return outcomes


def test_a_command_the_store_refuses_fails_alone_and_its_neighbours_are_stored() -> None:
    store = Store(ValueError)
    outcomes = commit_concurrently(store)
    assert outcomes == {"a": "ok", "b": "ok", "poison": "ValueError", "c": "ok", "d": "ok"}
    assert sorted(store.saved) == ["a", "b", "c", "d"]


def test_a_collision_fails_only_the_command_that_collided() -> None:
    store = Store(IntegrityError)
    outcomes = commit_concurrently(store)
    assert outcomes["poison"] == "IntegrityError"
    assert sorted(store.saved) == ["a", "b", "c", "d"]
