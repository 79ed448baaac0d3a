"""The command path's cache: its configured size, and resizing it for a bulk import."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from crm_es.app.customer_cache import CustomerCache, configured_cache_size
from crm_es.domain.customer import Customer
from crm_es.domain.errors import CrmError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def customer() -> Customer:
    return Customer(id=uuid4(), registered_recorded_at=T0, last_recorded_at=T0, registered_at=T0)


def test_cache_size_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CRM_ES_CACHE_SIZE", raising=False)
    assert configured_cache_size() == 10_000
    monkeypatch.setenv("CRM_ES_CACHE_SIZE", "250000")
    assert configured_cache_size() == 250_000
    assert configured_cache_size(5) == 5
    monkeypatch.setenv("CRM_ES_CACHE_SIZE", "lots")
    with pytest.raises(CrmError, match="CRM_ES_CACHE_SIZE must be a whole number"):
        configured_cache_size()
    with pytest.raises(CrmError, match="must not be negative"):
        configured_cache_size(-1)


def test_resized_holds_more_for_a_while_then_trims_to_the_least_recent() -> None:
    cache = CustomerCache(maxsize=2)
    states = [customer() for _ in range(5)]
    with cache.resized(4):
        for state in states:
            cache.put(state)
        held = [s for s in states if cache.get(s.id) is not None]
        assert held == states[1:]  # four held, the oldest dropped
    assert cache.maxsize == 2
    assert [s for s in states if cache.get(s.id) is not None] == states[3:]


def test_states_handed_back_by_a_bulk_chunk_never_replace_a_later_version() -> None:
    cache = CustomerCache()
    handed_back = customer()
    later = Customer(
        id=handed_back.id, registered_recorded_at=T0, last_recorded_at=T0, registered_at=T0
    )
    handed_back.version, later.version = 2, 3
    cache.put(later)  # another thread's command cached version 3 while the chunk held 2
    cache.put_many([handed_back])
    assert cache.get(handed_back.id) is later
    older = Customer(
        id=handed_back.id, registered_recorded_at=T0, last_recorded_at=T0, registered_at=T0
    )
    older.version = 4
    cache.put_many([older])  # a later version does replace it
    assert cache.get(handed_back.id) is older


def test_taken_states_are_out_of_the_cache_until_put_back() -> None:
    cache = CustomerCache()
    states = [customer() for _ in range(3)]
    cache.put_many(states)
    taken = cache.take_many([states[0].id.int, states[1].id.int, 12345])
    assert set(taken) == {states[0].id.int, states[1].id.int}
    assert cache.get(states[0].id) is None and cache.get(states[2].id) is states[2]
    cache.put_many(taken.values())
    assert cache.get(states[0].id) is states[0]
