"""What an insider with write access to the database does, row by row: alter, delete, swap and
re-hash stored rows behind the application's back (SQL straight on the store)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from crm_es.domain.ids import customer_id_for_ref
from crm_es.store.codec import HASH_SIZE, chain_hash
from tests.helpers.raw_store import db_id, raw, state_of, table, topic_of


def events_of(url: str, ref: str) -> list[tuple[int, str, bytes]]:
    rows = raw(
        url,
        f"SELECT originator_version, topic, state FROM {table(url)} WHERE originator_id = ? "
        "ORDER BY originator_version",
        (db_id(url, ref),),
    )
    return [(int(v), str(t), bytes(s)) for v, t, s in rows]


def set_state(url: str, ref: str, version: int, state: bytes) -> None:
    raw(
        url,
        f"UPDATE {table(url)} SET state = ? WHERE originator_id = ? AND originator_version = ?",
        (state, db_id(url, ref), version),
    )


def flip_byte(url: str, ref: str, version: int) -> None:
    state = bytearray(state_of(url, ref, version))
    state[40] ^= 0x01  # inside the body
    set_state(url, ref, version, bytes(state))


def swap(url: str, ref: str, first: int, second: int) -> None:
    a, b = state_of(url, ref, first), state_of(url, ref, second)
    ta, tb = topic_of(url, ref, first), topic_of(url, ref, second)
    for version, topic, state in ((first, tb, b), (second, ta, a)):
        raw(
            url,
            f"UPDATE {table(url)} SET topic = ?, state = ? "
            "WHERE originator_id = ? AND originator_version = ?",
            (topic, state, db_id(url, ref), version),
        )


def rehash_from(url: str, ref: str, version: int, new_body_state: bytes) -> None:
    """Replace the event at ``version`` and re-hash it and every later event, as a forger who
    knows the (public) hashing would: each chain links up again."""
    cid: UUID = customer_id_for_ref(ref)
    rows = events_of(url, ref)
    previous = next(s for v, _, s in rows if v == version - 1)[-HASH_SIZE:]
    for v, topic, state in rows:
        if v < version:
            continue
        body = new_body_state if v == version else state
        prefix = body[:4] + previous + body[4 + HASH_SIZE : -HASH_SIZE]
        sealed = prefix + chain_hash(cid, v, topic, prefix)
        set_state(url, ref, v, sealed)
        previous = sealed[-HASH_SIZE:]


def delete_rows(url: str, sql_table: str, where: str, params: tuple[Any, ...]) -> None:
    raw(url, f"DELETE FROM {sql_table} WHERE {where}", params)
