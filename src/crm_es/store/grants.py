"""The grants log: every change of who holds which role, one hash-chained row per change.

``crm_grants`` keeps, for each change made by ``crm-es users`` (:mod:`crm_es.app.users`), when,
who made it (the principal), whose grants changed, what changed (``add``, ``grant``, ``revoke``,
``remove``), the roles it adds or takes away, and the attributes a role needs that a database
role cannot hold: a staff member's owner id, a manager's team, an auditor's PII grant and an
integration's command types (``None``: unchanged by this change). A user's grants are the fold
of their rows (:func:`fold`); nothing is ever updated or deleted, so the log is also the
history of every grant (``crm-es audit access --grants``).

Rows are chained and written like the access log's (:mod:`crm_es.store.chained_rows`), and
``audit verify`` names an edited, moved or deleted row (:mod:`crm_es.audit.grants_chain`). The
table is created the first time the log is opened, under the store's schema lock, not by the
store itself: a store that never had users has no such table.

On PostgreSQL a user is also a login role (:func:`login_name`); the session principal reads a
login's attributes with :func:`attributes_for`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from crm_es.domain.errors import CrmError
from crm_es.store import chained_rows
from crm_es.store.database import BIGINT, TEXT, Database, Tx
from crm_es.store.url import schema_lock

GRANTS_TABLE: Final = "crm_grants"
Change = Literal["add", "grant", "revoke", "remove"]
_COLUMNS: Final = "seq, at, by_principal, user_name, change, roles, owner, team, pii, command_types"
_NOT_LOGIN = re.compile(r"[^a-z0-9_]")


class GrantError(CrmError):
    """A change of grants that cannot be made (unknown user or role, a role not held, …)."""


class GrantChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one user's grants, as stored."""

    seq: int
    at: str  # ISO 8601, UTC
    by: str  # the principal that made the change
    user: str
    change: Change
    roles: list[str]  # the roles added (add, grant), taken away (revoke) or held (remove)
    owner: str | None = None  # the attributes this change sets; None: left as they were
    team: list[str] | None = None
    pii: bool | None = None
    command_types: list[str] | None = None

    def canonical(self) -> bytes:
        """The bytes the chain hashes: every column, in order, as compact JSON."""
        return msgspec.json.encode(
            [self.seq, self.at, self.by, self.user, self.change, self.roles, self.owner,
             self.team, self.pii, self.command_types]
        )  # fmt: skip


class UserGrants(msgspec.Struct, frozen=True, kw_only=True):
    """A user's grants now: the fold of their rows."""

    user: str
    roles: list[str]
    owner: str | None
    team: list[str]
    pii: bool
    command_types: list[str]
    added: str  # when the user was added
    changed: str  # when their grants last changed


def login_name(user: str) -> str:
    """The PostgreSQL login role of ``user``: lower case, with ``: . -`` (and anything else a
    bare SQL name cannot hold) as ``_`` — ``user:Li`` logs in as ``user_li``, a name that needs
    no quotes in a URL, ``psql -U`` or hand-written SQL. Two users whose logins would be one
    role are refused when the second is added (the role exists)."""
    return _NOT_LOGIN.sub("_", user.lower())


def fold(changes: Iterable[GrantChange]) -> dict[str, UserGrants]:
    """Every current user's grants, from their rows in log order."""
    users: dict[str, UserGrants] = {}
    for c in changes:
        held = users.get(c.user)
        if c.change == "remove":
            users.pop(c.user, None)
        elif c.change == "add" or held is None:
            roles = sorted(set(c.roles)) if c.change != "revoke" else []
            base = UserGrants(user=c.user, roles=roles, owner=None, team=[], pii=False,
                              command_types=[], added=c.at, changed=c.at)  # fmt: skip
            users[c.user] = _attributes(base, c)
        elif c.change == "grant":
            users[c.user] = _attributes(
                msgspec.structs.replace(held, roles=sorted({*held.roles, *c.roles}), changed=c.at),
                c,
            )
        else:  # revoke: the attributes only a revoked role used go with it (a role granted
            # again later needs them given again, not an old team or PII grant back unseen)
            roles = sorted(set(held.roles) - set(c.roles))
            kept = set(roles)
            users[c.user] = msgspec.structs.replace(
                held,
                roles=roles,
                owner=held.owner if kept & {"staff", "manager"} else None,
                team=held.team if "manager" in kept else [],
                pii=held.pii and "auditor" in kept,
                command_types=held.command_types if "integration" in kept else [],
                changed=c.at,
            )
    return users


def _attributes(held: UserGrants, c: GrantChange) -> UserGrants:
    return msgspec.structs.replace(
        held,
        owner=held.owner if c.owner is None else c.owner,
        team=held.team if c.team is None else sorted(set(c.team)),
        pii=held.pii if c.pii is None else c.pii,
        command_types=held.command_types if c.command_types is None else sorted(c.command_types),
    )


def create_table(tx: Tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {GRANTS_TABLE} (seq {BIGINT} PRIMARY KEY, "
        f"at {TEXT} NOT NULL, by_principal {TEXT} NOT NULL, user_name {TEXT} NOT NULL, "
        f"change {TEXT} NOT NULL, roles {TEXT} NOT NULL, owner {TEXT}, team {TEXT}, "
        f"pii {BIGINT}, command_types {TEXT}, hash {TEXT} NOT NULL)"
    )
    tx.execute(
        f"CREATE INDEX IF NOT EXISTS ix_{GRANTS_TABLE}_user ON {GRANTS_TABLE} (user_name, seq)"
    )


def change_of(row: Sequence[Any]) -> GrantChange:
    """A row of ``SELECT {_COLUMNS}`` as a change."""
    seq, at, by, user, change, roles, owner, team, pii, command_types = row[:10]
    return GrantChange(
        seq=int(seq),
        at=str(at),
        by=str(by),
        user=str(user),
        change=change,
        roles=msgspec.json.decode(str(roles), type=list[str]),
        owner=None if owner is None else str(owner),
        team=None if team is None else msgspec.json.decode(str(team), type=list[str]),
        pii=None if pii is None else bool(pii),
        command_types=(
            None if command_types is None else msgspec.json.decode(str(command_types),
                                                                    type=list[str])
        ),
    )  # fmt: skip


def stored_chain(tx: Tx) -> list[tuple[int, bytes, str]]:
    """(seq, canonical bytes, stored hash) of every row in log order, for checking the chain
    (none when there is no table). A row whose columns no longer decode (altered behind the
    store's back) gets empty bytes, which never hash to its stored hash."""
    if not chained_rows.exists(tx, GRANTS_TABLE):
        return []
    out = []
    for row in tx.query(f"SELECT {_COLUMNS}, hash FROM {GRANTS_TABLE} ORDER BY seq"):
        try:
            canonical = change_of(row).canonical()
        except (ValueError, TypeError, msgspec.MsgspecError):
            canonical = b""
        out.append((int(row[0]), canonical, str(row[10])))
    return out


class GrantLog:
    """The grants log of one store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with schema_lock(db.config), db.transaction() as tx:  # one creator at a time
            create_table(tx)

    def user_changes(self, tx: Tx, user: str) -> list[GrantChange]:
        """One user's rows in log order, read inside ``tx`` (under :meth:`lock` to decide a
        change by them)."""
        if not chained_rows.exists(tx, GRANTS_TABLE):
            return []
        rows = tx.query(
            f"SELECT {_COLUMNS} FROM {GRANTS_TABLE} WHERE user_name = ? ORDER BY seq", (user,)
        )
        return [change_of(row) for row in rows]

    def lock(self, tx: Tx) -> None:
        """One writer at a time until ``tx`` ends: a change is decided by the rows before it."""
        chained_rows.lock(tx, GRANTS_TABLE)

    def append(self, tx: Tx, change: GrantChange) -> GrantChange:
        """Store ``change`` as the next row (its ``seq`` and ``at`` are set here) in ``tx``,
        which holds :meth:`lock`."""
        last = chained_rows.head(tx, GRANTS_TABLE)
        at = datetime.now(UTC).isoformat()
        stored = msgspec.structs.replace(change, seq=last.seq + 1, at=at)

        def listed(values: list[str] | None) -> str | None:
            return None if values is None else msgspec.json.encode(values).decode()

        tx.execute(
            f"INSERT INTO {GRANTS_TABLE} ({_COLUMNS}, hash) VALUES ({', '.join('?' * 11)})",
            (
                stored.seq,
                stored.at,
                stored.by,
                stored.user,
                stored.change,
                listed(stored.roles),
                stored.owner,
                listed(stored.team),
                None if stored.pii is None else int(stored.pii),
                listed(stored.command_types),
                chained_rows.link(last.hash, stored.canonical()).hex(),
            ),
        )
        return stored

    def changes(self, user: str | None = None, by: str | None = None) -> list[GrantChange]:
        """The changes of one user's grants, or made by one principal, or both, or all."""
        clauses, params = [], []
        if user is not None:
            clauses.append("user_name = ?")
            params.append(user)
        if by is not None:
            clauses.append("by_principal = ?")
            params.append(by)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.reading() as tx:
            if not chained_rows.exists(tx, GRANTS_TABLE):
                return []
            rows = tx.query(f"SELECT {_COLUMNS} FROM {GRANTS_TABLE}{where} ORDER BY seq", params)
        return [change_of(row) for row in rows]

    def users(self) -> dict[str, UserGrants]:
        return fold(self.changes())


def attributes_for(conn: Any, login: str) -> UserGrants | None:
    """The grants of the user whose PostgreSQL login is ``login``, read on ``conn`` (a psycopg
    connection whose ``search_path`` is the store's schema): the owner id, team, PII grant and
    command types a database role cannot hold. None when no such user was added with
    ``crm-es users`` (or the store has no grants log, or the session may not read it: then the
    principal gets no team, no PII grant and no command types, never more)."""
    import psycopg

    try:
        with conn.transaction():  # a savepoint: a refusal leaves the caller's transaction usable
            if conn.execute("SELECT to_regclass(%s)", (GRANTS_TABLE,)).fetchone()[0] is None:
                return None
            rows = conn.execute(f"SELECT {_COLUMNS} FROM {GRANTS_TABLE} ORDER BY seq").fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return None
    users = fold(change_of(row) for row in rows)
    return next((u for name, u in users.items() if login_name(name) == login), None)
