"""The grants log's tamper evidence, checked by ``audit verify``: each stored row of
``crm_grants`` must follow the one before it (numbered next, its hash the hash of its contents
chained to the previous row's stored hash), so an edited, moved or deleted row is named by its
number — a role slipped to someone behind the service's back shows.

Someone who rewrites every hash from an edited row on, or deletes the last rows, leaves a chain
that links up: unlike the access log, the grants log is not yet covered by the signed
checkpoints.
"""

from __future__ import annotations

from crm_es.audit.chains import Problem
from crm_es.store.chained_rows import chain_problems as stored_chain_problems
from crm_es.store.database import Tx
from crm_es.store.grants import stored_chain


def chain_problems(tx: Tx) -> list[Problem]:
    """The grants log's broken links, each naming its row (none when the store has no log)."""
    found = stored_chain_problems(stored_chain(tx))
    return [Problem("", 0, f"grants log: {what}") for what in found]
