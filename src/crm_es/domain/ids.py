"""Customer ids: derived from the external ref, so every process and host finds the same one.

Nothing reads a read model to decide a command (design §2): uniqueness of a customer comes from
this deterministic id, and the store's stream key does the rest.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID, uuid4, uuid5

from crm_es.domain import commands as cmd
from crm_es.domain.commands import nfc
from crm_es.domain.errors import CustomerNotFound
from crm_es.domain.plan import PLAN_ID

# Fixed forever: customer ids derive from external refs through it (uuid5), on every host.
CUSTOMER_NAMESPACE: Final = UUID("6f1c2b9e-3d4a-5e6f-8a7b-9c0d1e2f3a4b")

# Ids of recently seen refs (uuid5 costs ~2 µs). A plain dict, cleared when full: an import
# over more customers than an LRU's bound missed on every row, and the LRU's own upkeep was 3%
# of an import that fit.
MAX_REMEMBERED_REFS: Final = 250_000
_ids_by_ref: dict[str, UUID] = {}


def customer_id_for_ref(ref: str | UUID) -> UUID:
    """A customer's id: the UUID itself, or the uuid5 of its external ref in Unicode NFC
    (deterministic)."""
    if isinstance(ref, UUID):
        if ref == PLAN_ID:  # the plan's stream is no customer's (domain/plan.py)
            raise CustomerNotFound(str(ref))
        return ref
    found = _ids_by_ref.get(ref)
    if found is None:
        found = _id_for_ref(ref)
        if len(_ids_by_ref) >= MAX_REMEMBERED_REFS:
            _ids_by_ref.clear()
        _ids_by_ref[ref] = found
    return found


def _id_for_ref(ref: str) -> UUID:
    try:
        found = UUID(ref)
    except ValueError:
        # One customer however the ref's accents were composed: "é" typed as one code point
        # or as "e" and a combining accent are the same ref (Unicode NFC).
        return uuid5(CUSTOMER_NAMESPACE, nfc(ref))
    if found == PLAN_ID:  # the plan's stream is no customer's (domain/plan.py)
        raise CustomerNotFound(ref)
    return found


def customer_id_for_command(command: cmd.Command) -> UUID:
    """The customer a command is about: its ``customer`` (UUID or ref), or for a registration
    the id of its external ref (or of its command id, or a new one when it has neither)."""
    if isinstance(command, cmd.RegisterCustomer):
        if command.external_ref is not None:
            return customer_id_for_ref(command.external_ref)
        if command.command_id is not None:
            return uuid5(CUSTOMER_NAMESPACE, "command:" + command.command_id)
        return uuid4()
    if not isinstance(command, cmd.CustomerCommand):
        msg = f"{type(command).__name__} names no customer"
        raise TypeError(msg)
    return customer_id_for_ref(command.customer)
