"""Users and their grants (``crm-es users``): who holds which role, with what team, owner id,
PII grant or command types, and every change of it kept in the grants log.

Only an admin changes grants (:meth:`Users.add`, :meth:`~Users.grant`, :meth:`~Users.revoke`,
:meth:`~Users.remove`); whoever may list the access log (admins, auditors, privacy officers)
may read them. Each change is decided by the user's rows read under the log's write lock and
stored as one row of :mod:`crm_es.store.grants` in the same transaction; on PostgreSQL that
transaction also makes it in the database (:mod:`crm_es.store.pg_logins`): a login role per
user, in the group roles of its roles. :meth:`Users.principal` is the principal an embedding
application opens the CRM for once it has authenticated the user.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

import msgspec

from crm_es.domain.commands import COMMAND_TYPES
from crm_es.domain.errors import PermissionDenied
from crm_es.domain.policy import check_store_action
from crm_es.domain.principals import Principal, Role
from crm_es.store import pg_logins
from crm_es.store.database import Tx
from crm_es.store.grants import GrantChange, GrantError, GrantLog, UserGrants, fold, login_name

if TYPE_CHECKING:
    from crm_es.app.service import CRM

__all__ = ["GrantChange", "GrantError", "UserGrants", "Users"]

_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{1,63}")
_OWNER: Final = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
MAX_TEAM: Final = 1000
# The attribute each role needs, and the role it belongs to.
_NEEDS: Final = (("owner", ("staff", "manager")), ("team", ("manager",)), ("pii", ("auditor",)),
                 ("command_types", ("integration",)))  # fmt: skip
_NEVER_INTEGRATION: Final = frozenset({"erase_personal_data"})


class Users:
    """The users and grants of the store ``crm`` is open on, changed as ``crm.principal``."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.log = GrantLog(crm.store.db)

    # --- changes (admins only) ---------------------------------------------------------------

    def add(
        self,
        name: str,
        roles: Iterable[str | Role],
        owner: str | None = None,
        team: Iterable[str] = (),
        pii: bool = False,
        command_types: Iterable[str] = (),
    ) -> UserGrants:
        """Add user ``name`` with ``roles`` (at least one) and the attributes they need: a
        staff member's or manager's ``owner`` id (default ``staff:`` + its login name), a
        manager's ``team`` of owner ids, an auditor's ``pii`` grant, an integration's
        ``command_types``. On PostgreSQL: a login role in the roles' groups."""
        wanted = _roles(roles)
        if not wanted:
            raise GrantError(f"user {name!r}: give at least one role ({_ROLE_NAMES})")
        if owner is None and {"staff", "manager"} & set(wanted):
            # One owner id per user, the same on every path: its login's name (east:li and
            # west:li are two people, never both staff:li).
            owner = f"staff:{login_name(_name(name))}"
        change = GrantChange(seq=0, at="", by="", user=_name(name), change="add", roles=wanted,
                             owner=_owner(owner), team=_team(team), pii=bool(pii),
                             command_types=_command_types(command_types))  # fmt: skip

        def decide(held: UserGrants | None) -> GrantChange:
            if held is not None:
                raise GrantError(f"user {name!r} exists already (added {held.added}): grant or "
                                 "revoke its roles instead")  # fmt: skip
            return change

        return _known(
            name, self._change(name, decide, lambda tx, _: pg_logins.create_login(tx, name, wanted))
        )

    def grant(
        self,
        name: str,
        role: str | Role,
        owner: str | None = None,
        team: Iterable[str] | None = None,
        pii: bool | None = None,
        command_types: Iterable[str] | None = None,
    ) -> UserGrants:
        """Give user ``name`` ``role``; the attributes given replace the user's (None: kept).
        Granting a role held already only changes the attributes given."""
        (wanted,) = _roles([role])
        change = GrantChange(
            seq=0, at="", by="", user=_name(name), change="grant", roles=[wanted],
            owner=_owner(owner), team=None if team is None else _team(team), pii=pii,
            command_types=None if command_types is None else _command_types(command_types),
        )  # fmt: skip
        attributes = (owner, team, pii, command_types)

        def decide(held: UserGrants | None) -> GrantChange:
            held = _known(name, held)
            if wanted in held.roles and all(a is None for a in attributes):
                raise GrantError(f"user {name!r} holds {wanted!r} already")
            return change

        def in_database(tx: Tx, held: UserGrants | None) -> None:
            if wanted not in _known(name, held).roles:  # granted again: the attributes only
                pg_logins.grant(tx, name, wanted)

        return _known(name, self._change(name, decide, in_database))

    def revoke(self, name: str, role: str | Role) -> UserGrants:
        """Take ``role`` from user ``name``, and the attributes only it used (a manager's team,
        an auditor's PII grant, an integration's command types)."""
        (wanted,) = _roles([role])
        change = GrantChange(seq=0, at="", by="", user=_name(name), change="revoke",
                             roles=[wanted])  # fmt: skip

        def decide(held: UserGrants | None) -> GrantChange:
            held = _known(name, held)
            if wanted not in held.roles:
                has = ", ".join(held.roles) or "no role"
                raise GrantError(f"user {name!r} does not hold {wanted!r} (holds {has})")
            return change

        return _known(
            name, self._change(name, decide, lambda tx, _: pg_logins.revoke(tx, name, wanted))
        )

    def remove(self, name: str) -> None:
        """Remove user ``name`` (their rows stay: the history of their grants). On PostgreSQL
        the login is dropped, which the database refuses while it owns objects."""
        _name(name)

        def decide(held: UserGrants | None) -> GrantChange:
            return GrantChange(seq=0, at="", by="", user=name, change="remove",
                               roles=_known(name, held).roles)  # fmt: skip

        self._change(name, decide, lambda tx, _: pg_logins.drop_login(tx, name))

    # --- reads ---------------------------------------------------------------------------------

    def list(self) -> list[UserGrants]:
        """Every user and their grants now, by name."""
        check_store_action(self.crm.principal, "access_log")
        return sorted(self.log.users().values(), key=lambda u: u.user)

    def changes(self, user: str | None = None, by: str | None = None) -> builtins.list[GrantChange]:
        """Every change of grants (of ``user``, made ``by`` a principal), oldest first."""
        check_store_action(self.crm.principal, "access_log")
        return self.log.changes(user=user, by=by)

    def principal(self, name: str) -> Principal:
        """User ``name`` as a principal: the fold of their rows."""
        check_store_action(self.crm.principal, "access_log")
        held = _known(name, self.log.users().get(name))
        return Principal(
            name=held.user,
            roles=frozenset(Role(r) for r in held.roles),
            owner=held.owner,
            team=frozenset(held.team),
            pii=held.pii,
            command_types=frozenset(held.command_types),
        )

    # --- one change ----------------------------------------------------------------------------

    def _change(
        self,
        name: str,
        decide: Callable[[UserGrants | None], GrantChange],
        in_database: Callable[[Tx, UserGrants | None], None],
    ) -> UserGrants | None:
        """Decide the change by the user's rows under the log's lock, make it in the database
        (PostgreSQL) and store its row, all in one transaction; the user's grants after it
        (None: removed)."""
        principal = self.crm.principal
        if Role.ADMIN not in principal.roles:
            raise PermissionDenied(principal, "change grants", None, "only an admin may")
        _name(name)
        with pg_logins.refusals(), self.crm.store.db.transaction() as tx:
            self.log.lock(tx)
            before = self.log.user_changes(tx, name)
            held = fold(before).get(name)
            change = msgspec.structs.replace(decide(held), by=principal.name)
            after = fold([*before, change]).get(name)
            if after is not None:
                _check_attributes(after)
            if tx.postgres:
                in_database(tx, held)
            stored = self.log.append(tx, change)  # numbered and timed
        return fold([*before, stored]).get(name)


_ROLE_NAMES: Final = ", ".join(r.value for r in Role)


def _roles(roles: Iterable[str | Role]) -> list[str]:
    out = set()
    for role in roles:
        try:
            out.add(Role(role).value)
        except ValueError:
            raise GrantError(f"unknown role {str(role)[:40]!r}; roles: {_ROLE_NAMES}") from None
    return sorted(out)


def _name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name[:40] + "…" if isinstance(name, str) and len(name) > 40 else name
        raise GrantError(f"user name {shown!r} must be 1-63 letters (A-Z, a-z), digits or _ . : -")
    return name


def _owner(owner: str | None) -> str | None:
    if owner is not None and not _OWNER.fullmatch(owner):
        raise GrantError(f"owner id {owner[:40]!r} must be 1-200 characters, no control "
                         "characters (e.g. staff:li)")  # fmt: skip
    return owner


def _team(team: Iterable[str]) -> list[str]:
    owners = sorted({_owner(o) or "" for o in team})
    if len(owners) > MAX_TEAM:
        raise GrantError(f"a team has at most {MAX_TEAM} owner ids (got {len(owners)})")
    return owners


def _command_types(types: Iterable[str]) -> list[str]:
    out = sorted(set(types))
    for kind in out:
        if kind not in COMMAND_TYPES:
            known = ", ".join(sorted(COMMAND_TYPES))
            raise GrantError(f"unknown command type {kind[:40]!r}; types: {known}")
        if kind in _NEVER_INTEGRATION:
            raise GrantError(f"{kind} is never an integration's (erasure is the privacy "
                             "officer's)")  # fmt: skip
    return out


def _known(name: str, held: UserGrants | None) -> UserGrants:
    if held is None:
        raise GrantError(f"unknown user {name!r}: add it first (crm-es users add)")
    return held


def _check_attributes(user: UserGrants) -> None:
    """An attribute given to a user without the role it is for is a mistake worth a word
    (``--team`` for a staff member meant ``manager``)."""
    values = {"owner": user.owner, "team": user.team, "pii": user.pii,
              "command_types": user.command_types}  # fmt: skip
    for attribute, roles in _NEEDS:
        if values[attribute] and not set(roles) & set(user.roles):
            which = " or ".join(f"{'an' if r[0] in 'aeiou' else 'a'} {r}" for r in roles)
            raise GrantError(f"user {user.user!r}: {attribute} is for {which}, which the user "
                             "is not")  # fmt: skip
