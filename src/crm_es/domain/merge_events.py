"""The event of a merge: a customer registered twice folded into the one that stays (客户识别).

One ``CustomersMerged`` is written to BOTH streams in one transaction: in the duplicate's stream
it closes the customer (every later command on it is refused, naming the survivor; its history
stays readable and verifiable), in the survivor's it records what was absorbed. Both carry the
same two ids, so either stream alone says what happened; which side a stream is on is whether
its own id is ``duplicate_id``. Registered in :data:`crm_es.domain.events.EVENT_TYPES`.

Nothing personal is carried over: the duplicate's name and contact details stay encrypted under
its own key in its own stream (an erasure of it still erases them). ``points_moved`` is a figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from crm_es.domain.event_base import CustomerEvent


class CustomersMerged(CustomerEvent, frozen=True, kw_only=True):
    TOPIC = "crm.customer.CustomersMerged"

    duplicate_id: UUID  # the customer closed by the merge
    survivor_id: UUID  # the customer that stays and absorbs it
    # The duplicate's live loyalty points on the merge day, moved to the survivor as lots of
    # the same expiry (the survivor's PointsGranted events of the same command).
    points_moved: int = 0


def _merged(customer: Any, e: CustomersMerged) -> None:
    """Evolve a customer state (:class:`crm_es.domain.customer.Customer`, which imports this
    module) by its side of a merge."""
    if e.duplicate_id == customer.id:  # closed; its live points went to the survivor
        customer.merged_into = e.survivor_id
        customer.lots, customer.points_balance = [], 0
        if customer.points_since is None or e.occurred_at > customer.points_since:
            customer.points_since = e.occurred_at
    else:
        customer.absorbed.append(e.duplicate_id)


MERGE_EVOLVERS: Final[dict[type[CustomerEvent], Callable[[Any, Any], None]]] = {
    CustomersMerged: _merged
}
"""Event class -> evolver, for the customer's table of evolvers."""
