"""Each side of a merge has its twin: a ``CustomersMerged`` in a duplicate's stream has the same
event in its survivor's stream, and the other way round.

A merge writes both in one transaction (:mod:`crm_es.app.merge`), so a lone side is a stream
cut behind the store's back (the survivor's last events deleted: its chain still links up) or a
forged history. Verifying one customer reads the other side's stream for its twin too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from uuid import UUID

from crm_es.audit.chains import Problem
from crm_es.audit.ledger import CustomerFacts
from crm_es.domain import events as ev
from crm_es.domain.customer import Customer
from crm_es.store.store import Store

Pair = tuple[UUID, UUID]  # (duplicate, survivor)


class MergeTwins:
    """Collects the merge events of the streams verified; :meth:`problems` names lone sides."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sides: dict[Pair, dict[UUID, int]] = {}  # pair -> {stream: version}
        self.read: set[UUID] = set()

    def __call__(self, facts: CustomerFacts) -> None:
        self.read.add(facts.customer_id)
        for row in facts.events:
            if row.topic != ev.CustomersMerged.TOPIC:
                continue
            event = self.store.codec.decode_state(row.topic, row.state)
            if isinstance(event, ev.CustomersMerged):
                pair = (event.duplicate_id, event.survivor_id)
                self.sides.setdefault(pair, {})[facts.customer_id] = row.version

    def others(self) -> set[UUID]:
        """The streams that hold the twins of the merges seen, not read yet."""
        return {c for pair in self.sides for c in pair} - self.read

    def read_others(self, facts_of: Callable[[UUID], Iterable[CustomerFacts]]) -> None:
        for other in sorted(self.others()):
            for facts in facts_of(other):
                self(facts)
            self.read.add(other)

    def problems(self) -> list[Problem]:
        found = []
        for (duplicate, survivor), sides in sorted(self.sides.items()):
            for stream, version in sorted(sides.items()):
                if stream not in (duplicate, survivor):
                    found.append(Problem(str(stream), version, f"a merge of {duplicate} into "
                                         f"{survivor} in a third customer's stream"))  # fmt: skip
                    continue
                other = survivor if stream == duplicate else duplicate
                if other not in sides:
                    side = "survivor" if other == survivor else "duplicate"
                    found.append(Problem(str(stream), version, f"the merge of {duplicate} into "
                                         f"{survivor} has no twin in the {side}'s stream "
                                         f"({other})"))  # fmt: skip
        return found


def lone_side(
    states: dict[UUID, Customer | None], load: Callable[[UUID], Customer | None]
) -> str | None:
    """Why an import of ``states`` (the file's customers) would leave a duplicate closed by a
    merge without its survivor (in the file or in the store, ``load``), or None. A survivor
    alone may come first (``audit verify`` names its lone side until its duplicate follows)."""
    for cid, state in sorted(states.items(), key=lambda item: item[0].int):
        survivor = state.merged_into if state is not None else None
        if survivor is None:
            continue
        twin = states[survivor] if survivor in states else load(survivor)
        if twin is None or cid not in twin.absorbed:
            return (f"customer {cid} was merged into customer {survivor}, which holds no twin "
                    "of the merge in the file or in this store: import the survivor first (or "
                    "the whole store)")  # fmt: skip
    return None
