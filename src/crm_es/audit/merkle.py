"""A Merkle tree over the lines of a checkpoint (RFC 6962 hashing: 0x00 before a leaf, 0x01
before two children; an odd node goes up a level as it is), and proofs that one line is in it.

A proof lets an export carry, for each of its customers, evidence that the customer's line is
one of those a signed checkpoint covers, without carrying the other customers' lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

EMPTY: Final = hashlib.sha256(b"").hexdigest()

# One step of a proof: the sibling's hash, and whether it sits on the left.
Step = tuple[str, bool]


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    levels = [[_leaf(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        levels.append(up)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> str:
    return _levels(leaves)[-1][0].hex() if leaves else EMPTY


class MerkleTree:
    """A tree built once, for many proofs (an export proves each of its customers)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels = _levels(leaves) if leaves else [[]]

    def proof(self, index: int) -> list[Step]:
        """The siblings from leaf ``index`` up to the root."""
        steps: list[Step] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                steps.append((level[sibling].hex(), sibling < index))
            index //= 2
        return steps


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[Step]:
    return MerkleTree(leaves).proof(index)


def proves(leaf: bytes, steps: Sequence[Step], root: str) -> bool:
    """Whether ``steps`` lead from ``leaf`` to ``root``."""
    try:
        node = _leaf(leaf)
        for sibling, on_left in steps:
            other = bytes.fromhex(sibling)
            node = _node(other, node) if on_left else _node(node, other)
    except ValueError:
        return False
    return node.hex() == root
