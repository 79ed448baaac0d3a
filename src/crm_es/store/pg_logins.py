"""A user of ``crm-es users`` as a PostgreSQL login: created, put in and out of the group roles
of ``crm-es roles init`` and dropped, in the transaction that stores the change's row.

Role statements are transactional in PostgreSQL, so a change and its row in the grants log
commit together or not at all. The login has no password: how it authenticates (trust, peer,
a certificate, a password set by the DBA) is the deployment's choice, and a password passed
through this tool would end up in shell histories. Names are always quoted by psycopg.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from psycopg import sql

from crm_es.domain.principals import Role
from crm_es.store.database import Tx
from crm_es.store.grants import GrantError, login_name
from crm_es.store.pg_roles import PREFIX_SETTING, group_role
from crm_es.store.settings import SETTINGS_TABLE

# Names PostgreSQL keeps for itself (CREATE ROLE refuses them).
_RESERVED: Final = frozenset({"public", "none", "current_user", "current_role", "session_user"})
_PRIVILEGE: Final = (
    "changing users on PostgreSQL takes a role with CREATEROLE that may write the store's "
    "tables (the store's owner with CREATEROLE, or a superuser)"
)


def _run(tx: Tx, statement: sql.Composable) -> None:
    tx.execute(statement.as_string(None))


@contextmanager
def refusals() -> Iterator[None]:
    """The database's refusals as errors that say what to do."""
    import psycopg

    try:
        yield
    except psycopg.errors.InsufficientPrivilege as e:
        raise GrantError(f"{_PRIVILEGE}: {e}") from None
    except psycopg.errors.DependentObjectsStillExist as e:
        raise GrantError(
            f"the login cannot be dropped: it owns objects or holds privileges ({e}); "
            "reassign or drop them first (REASSIGN OWNED BY / DROP OWNED BY in each database)"
        ) from None


def groups(tx: Tx, roles: Iterable[str]) -> list[str]:
    """The group roles of ``roles`` in this installation; an error saying to run ``crm-es roles
    init`` when they are not there."""
    found = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (PREFIX_SETTING,))
    names = [group_role(str(found[0][0]), Role(r)) for r in roles] if found else []
    there = {str(r[0]) for r in tx.query("SELECT rolname FROM pg_roles WHERE rolname = ANY(?)",
                                         (names,))}  # fmt: skip
    missing = [n for n in names if n not in there]
    if not found or missing:
        what = ", ".join(missing) or "this store's group roles"
        raise GrantError(f"{what} missing: run `crm-es roles init` as the store's owner first")
    return names


def check_login_free(tx: Tx, user: str) -> str:
    """The login of ``user``, refused when PostgreSQL keeps the name or a role of that name
    exists (another user's login, a group, a DBA's role: never taken over)."""
    login = login_name(user)
    if login.startswith("pg_") or login in _RESERVED:
        raise GrantError(f"user {user!r}: its login {login!r} is a name PostgreSQL reserves")
    if tx.query("SELECT 1 FROM pg_roles WHERE rolname = ?", (login,)):
        raise GrantError(
            f"user {user!r}: a PostgreSQL role {login!r} exists already (logins are "
            "lower case with : . - as _, so another user or role may have the name)"
        )
    return login


def create_login(tx: Tx, user: str, roles: Iterable[str]) -> None:
    """``CREATE ROLE <login> LOGIN`` and put it in the groups of ``roles``."""
    names = groups(tx, roles)
    login = check_login_free(tx, user)
    with refusals():
        _run(tx, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        for name in names:
            _run(tx, sql.SQL("GRANT {} TO {}").format(sql.Identifier(name),
                                                      sql.Identifier(login)))  # fmt: skip


def grant(tx: Tx, user: str, role: str) -> None:
    (name,) = groups(tx, [role])
    login = _existing(tx, user)
    with refusals():
        _run(tx, sql.SQL("GRANT {} TO {}").format(sql.Identifier(name), sql.Identifier(login)))


def revoke(tx: Tx, user: str, role: str) -> None:
    (name,) = groups(tx, [role])
    login = _existing(tx, user)
    with refusals():
        _run(tx, sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(name), sql.Identifier(login)))
    # REVOKE only takes away what this role granted (a warning otherwise): say so rather than
    # record a revoke the database did not make.
    if tx.query(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = ? AND u.rolname = ?",
        (name, login),
    ):
        raise GrantError(f"{login!r} is still in {name!r}: another role granted it; revoke it as "
                         "that role or a superuser")  # fmt: skip


def drop_login(tx: Tx, user: str) -> None:
    login = login_name(user)
    if not tx.query("SELECT 1 FROM pg_roles WHERE rolname = ?", (login,)):
        return  # dropped by hand already: the user is removed all the same
    with refusals():
        _run(tx, sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))


def _existing(tx: Tx, user: str) -> str:
    login = login_name(user)
    if not tx.query("SELECT 1 FROM pg_roles WHERE rolname = ?", (login,)):
        raise GrantError(f"user {user!r}: its login {login!r} is not in the database (dropped "
                         "by hand?): remove the user and add it again")  # fmt: skip
    return login
