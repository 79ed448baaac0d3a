"""Hash chains: each stored event holds the hash of its predecessor and its own, so a stream
read in version order either links up or names its first broken link.

Shared by verification (:mod:`.verify`) and audit import (:mod:`.export`), which checks a file's
chains before it stores anything. The stored layout is :mod:`crm_es.store.codec`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID

import msgspec

from crm_es.store.codec import (
    FORMAT,
    GENESIS,
    HASH_SIZE,
    HEADER_SIZE,
    chain_hash,
    stored_hash,
    stored_prev_hash,
)

Head = tuple[int, bytes]  # (version, stored hash) of a stream's last event


class Problem(msgspec.Struct, frozen=True):
    customer_id: str
    version: int
    problem: str


def link_problem(
    customer_id: UUID, version: int, topic: str, state: bytes, previous: Head
) -> Problem | None:
    """What is wrong with the event stored as (version, topic, state) as the successor of
    ``previous`` in its stream, if anything."""
    prev_version, prev_hash = previous
    cid = str(customer_id)
    if version != prev_version + 1:
        what = "is missing" if version > prev_version else "is out of order"
        return Problem(cid, prev_version + 1, f"version {prev_version + 1} {what} "
                       f"(found version {version} after {prev_version})")  # fmt: skip
    if len(state) < HEADER_SIZE + HASH_SIZE or state[0] != FORMAT:
        return Problem(cid, version, "stored bytes are malformed")
    if chain_hash(customer_id, version, topic, state[:-HASH_SIZE]) != stored_hash(state):
        return Problem(cid, version, "stored bytes were altered: the event's hash does not match")
    if stored_prev_hash(state) != prev_hash:
        return Problem(cid, version, "does not link to the previous event (replaced or reordered)")
    return None


def verify_stream(
    customer_id: UUID, rows: Iterable[tuple[int, str, bytes]]
) -> tuple[Head, int, Problem | None]:
    """(head, events, first problem) of one stream's (version, topic, state) rows read in
    version order; the head is the last event that links up."""
    head, count = (0, GENESIS), 0
    for version, topic, state in rows:
        count += 1
        problem = link_problem(customer_id, version, topic, state, head)
        if problem is not None:
            return head, count, problem
        head = (version, stored_hash(state))
    return head, count, None


def heads_digest(heads: dict[UUID, Head]) -> str:
    """sha256 over the sorted (customer id, head version, head hash) of every stream."""
    h = hashlib.sha256()
    for cid, (version, head) in sorted(heads.items(), key=lambda item: str(item[0])):
        h.update(f"{cid} {version} {head.hex()}\n".encode())
    return h.hexdigest()
