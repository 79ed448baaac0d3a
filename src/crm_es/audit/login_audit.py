"""Is each event's actor the login that inserted it? The actor part of :func:`~.verify.verify`.

The actor inside an event is the writer's word: a program connected as a staff login can put
any principal's name there. On PostgreSQL after ``crm-es roles init`` the database stamps every
inserted event with the inserting login (``session_user``, :func:`~crm_es.store.pg_functions.
stamp_logins`), which no insert can choose. The service records the principal of a session as
``pg:<login>`` (:func:`~crm_es.store.pg_roles.principal_for_session`), so an event whose actor
is anything else was recorded under a name its writer does not hold.

Three kinds of login are trusted to record other names, as they may anyway: superusers and the
store's owner (they own the tables), and admins (``audit import`` stores the source's actors).
Events stored before roles init carry no login and are not judged. SQLite has no logins: the
file is the boundary (docs/security.md).
"""

from __future__ import annotations

from typing import Any

import msgspec

from crm_es.audit.chains import Problem
from crm_es.audit.ledger import CustomerFacts, EventRow
from crm_es.domain.principals import Role
from crm_es.store.codec import HASH_SIZE, HEADER_SIZE, to_domain_names
from crm_es.store.database import Tx
from crm_es.store.pg_roles import PREFIX_SETTING, group_role
from crm_es.store.settings import SETTINGS_TABLE
from crm_es.store.store import Store

SESSION_PRINCIPAL_PREFIX = "pg:"


class StoredEnvelope(msgspec.Struct):
    """The two envelope fields the audit reads without decrypting anything."""

    command_id: str | None = None
    actor: str | None = None


_ENVELOPE = msgspec.msgpack.Decoder(StoredEnvelope)  # reads these fields, skips the rest


def envelope_of(store: Store, row: EventRow) -> StoredEnvelope:
    if row.state[1]:  # compressed or enciphered: the codec opens it (no personal field)
        event = store.envelope_reader.decode_state(row.topic, row.state)
        return StoredEnvelope(command_id=event.command_id, actor=event.actor)
    return _ENVELOPE.decode(to_domain_names(row.state[HEADER_SIZE:-HASH_SIZE]))


class TrustedLogins:
    """Which logins may record events under another name (the module doc), asked of the
    database once per login within one verification's transaction."""

    def __init__(self, tx: Tx, events_table: str) -> None:
        self._tx, self._events_table = tx, events_table
        self._known: dict[str, bool] = {}
        prefix = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (PREFIX_SETTING,))
        self._admins = group_role(str(prefix[0][0]), Role.ADMIN) if prefix else None

    def __contains__(self, login: str) -> bool:
        if login not in self._known:
            self._known[login] = self._ask(login)
        return self._known[login]

    def _ask(self, login: str) -> bool:
        rows: list[Any] = self._tx.query(
            "SELECT r.rolsuper OR pg_has_role(r.oid, t.tableowner, 'USAGE') "
            "OR COALESCE(pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = ?), "
            "'MEMBER'), false) FROM pg_roles AS r, pg_tables AS t "
            "WHERE r.rolname = ? AND t.schemaname = current_schema() AND t.tablename = ?",
            (self._admins or "", login, self._events_table),
        )
        return bool(rows and rows[0][0])  # a login dropped since: not trusted


def actor_problems(store: Store, facts: CustomerFacts, trusted: TrustedLogins) -> list[Problem]:
    """Events whose actor is not the principal of the login the database saw insert them."""
    problems = []
    for row in facts.events:
        if row.login is None or row.login in trusted:
            continue
        actor = envelope_of(store, row).actor
        own = f"{SESSION_PRINCIPAL_PREFIX}{row.login}"
        if actor != own:
            why = (f"recorded by the database login {row.login!r} under the actor {actor!r}: "
                   f"a login records as {own} (actor forged)")  # fmt: skip
            problems.append(Problem(str(facts.customer_id), row.version, why))
    return problems
