"""Users and grants (issue 16, item 5) on both stores: add, grant, revoke, remove and list, each
change one row of the hash-chained grants log; the refusals, which store nothing; only an admin
changes grants; ``audit verify`` names an edited or deleted grants row. On PostgreSQL a user is
a login role in the groups of ``roles init``, changed in the transaction that stores its row.

Roles are cluster-wide: on PostgreSQL every test initialises group roles with a prefix of its
own, names its users with that prefix, and drops them all afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crm_es import CRM
from crm_es.app.users import GrantError, Users
from crm_es.audit.verify import verify
from crm_es.domain.errors import PermissionDenied
from crm_es.domain.principals import Principal, Role
from crm_es.store.grants import GRANTS_TABLE, attributes_for, login_name
from crm_es.store.pg_roles import drop_roles, init_roles, principal_for_session
from crm_es.store.url import parse_store_url
from tests.helpers.raw_store import raw


@dataclass
class Setup:
    url: str
    crm: CRM
    users: Users
    prefix: str

    def name(self, short: str) -> str:
        """A user name of this test alone (logins are cluster-wide)."""
        return f"{self.prefix}{short}"

    def login_url(self, user: str) -> str:
        return self.url.replace("postgresql://postgres@", f"postgresql://{login_name(user)}@")

    def connect(self, url: str | None = None) -> psycopg.Connection[Any]:
        config = parse_store_url(url or self.url)
        conn = psycopg.connect(config.conninfo(), autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(config.schema)))
        return conn


@pytest.fixture
def setup(store_url: str) -> Iterator[Setup]:
    yield from _setup(store_url)


@pytest.fixture
def pg_setup(postgres_url: str) -> Iterator[Setup]:
    yield from _setup(postgres_url)


def _setup(url: str) -> Iterator[Setup]:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    config = parse_store_url(url)
    crm = CRM(url)
    try:
        if config.is_postgres:
            init_roles(config, prefix)
        yield Setup(url, crm, Users(crm), prefix)
    finally:
        crm.close()
        if config.is_postgres:
            _drop_logins(url, prefix)
            drop_roles(config, prefix)


def _drop_logins(url: str, prefix: str) -> None:
    with psycopg.connect(parse_store_url(url).conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND starts_with(rolname, %s)",
            (prefix,),
        ).fetchall()
        for (name,) in rows:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_users_are_added_granted_revoked_removed_and_listed(setup: Setup) -> None:
    users, li, wang = setup.users, setup.name("li"), setup.name("wang")
    users.add(li, ["staff"], owner="staff:li")
    users.add(wang, [Role.MANAGER], team=["staff:wu", "staff:li"])
    granted = users.grant(li, "auditor", pii=True)
    assert (granted.roles, granted.owner, granted.pii) == (["auditor", "staff"], "staff:li", True)
    assert users.principal(li) == Principal(
        name=li, roles=frozenset({Role.STAFF, Role.AUDITOR}), owner="staff:li", pii=True
    )
    assert users.principal(wang).team == frozenset({"staff:wu", "staff:li"})
    revoked = users.revoke(li, "auditor")  # the PII grant goes with the role
    assert (revoked.roles, revoked.pii) == (["staff"], False)
    users.remove(wang)
    assert [(u.user, u.roles) for u in users.list()] == [(li, ["staff"])]
    changes = users.changes()
    assert [(c.seq, c.user, c.change, c.roles) for c in changes] == [
        (1, li, "add", ["staff"]), (2, wang, "add", ["manager"]), (3, li, "grant", ["auditor"]),
        (4, li, "revoke", ["auditor"]), (5, wang, "remove", ["manager"])]  # fmt: skip
    assert {c.by for c in changes} == {setup.crm.principal.name}
    assert [c.seq for c in users.changes(user=wang)] == [2, 5]
    assert users.changes(by="user:nobody") == []
    assert verify(setup.crm).ok


def test_refused_changes_say_why_and_store_nothing(setup: Setup) -> None:
    users, li = setup.users, setup.name("li")
    users.add(li, ["staff"])
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: users.add(li, ["analyst"]), "exists already"),
        (lambda: users.add(setup.name("x"), ["boss"]), "unknown role 'boss'; roles: admin, "
         "manager, staff, analyst, auditor, privacy_officer, integration"),
        (lambda: users.add(setup.name("x"), []), "at least one role"),
        (lambda: users.grant(setup.name("nobody"), "staff"), "unknown user"),
        (lambda: users.revoke(setup.name("nobody"), "staff"), "unknown user"),
        (lambda: users.remove(setup.name("nobody")), "unknown user"),
        (lambda: users.revoke(li, "manager"), "does not hold 'manager' (holds staff)"),
        (lambda: users.grant(li, "staff"), "holds 'staff' already"),
        (lambda: users.grant(li, "analyst", team=["staff:wu"]), "team is for a manager"),
        (lambda: users.add(setup.name("x"), ["staff"], pii=True), "pii is for an auditor"),
        (lambda: users.add(setup.name("x"), ["integration"], command_types=["fly"]),
         "unknown command type 'fly'"),
        (lambda: users.add(setup.name("x"), ["integration"],
                           command_types=["erase_personal_data"]), "never an integration's"),
        (lambda: users.add(setup.name("x"), ["staff"], owner="staff:\n"), "owner id"),
    ]  # fmt: skip
    for change, message in refusals:
        with pytest.raises(GrantError) as caught:
            change()
        assert message in str(caught.value)
    for name in ("", "a b", "x" * 64, "王芳", "a\x00", "li;drop"):
        with pytest.raises(GrantError, match="user name"):
            users.add(name, ["staff"])
    assert [c.change for c in users.changes()] == ["add"]


def test_only_an_admin_changes_grants_and_the_access_log_roles_read_them(setup: Setup) -> None:
    setup.users.add(setup.name("li"), ["staff"])
    for role in (Role.STAFF, Role.MANAGER, Role.AUDITOR, Role.PRIVACY_OFFICER, Role.ANALYST):
        principal = Principal(name=f"user:{role}", roles=frozenset({role}), pii=True)
        with CRM(setup.url, principal=principal) as crm:
            users = Users(crm)
            with pytest.raises(PermissionDenied, match="may not change grants"):
                users.add(setup.name("mallory"), ["admin"])
            with pytest.raises(PermissionDenied):
                users.grant(setup.name("li"), "admin")
            if role in (Role.AUDITOR, Role.PRIVACY_OFFICER):
                assert [u.user for u in users.list()] == [setup.name("li")]
            else:
                with pytest.raises(PermissionDenied):
                    users.list()
    assert [(c.change, c.roles) for c in setup.users.changes()] == [("add", ["staff"])]


def test_a_users_principal_opens_the_crm_with_its_grants(setup: Setup) -> None:
    li = setup.name("li")
    setup.users.add(li, ["staff"], owner="staff:li")
    setup.crm.register_customer(external_ref="C-1", name="王芳", owner="staff:li")
    setup.crm.register_customer(external_ref="C-2", name="李雷", owner="staff:wu")
    with CRM(setup.url, principal=setup.users.principal(li)) as crm:
        assert crm.get_customer("C-1").name == "王芳"
        with pytest.raises(PermissionDenied):
            crm.get_customer("C-2")


def test_verify_names_an_edited_and_a_deleted_grants_row(setup: Setup) -> None:
    li, wu = setup.name("li"), setup.name("wu")
    setup.users.add(li, ["staff"])
    setup.users.add(wu, ["analyst"])
    setup.users.revoke(li, "staff")
    if setup.url.startswith("postgresql"):
        # roles init made the log append-only for everyone; an owner can still switch that
        # off, and verify must still name what it then changes
        raw(setup.url, f"ALTER TABLE {GRANTS_TABLE} DISABLE TRIGGER USER")
    raw(setup.url, f"UPDATE {GRANTS_TABLE} SET roles = ? WHERE seq = 2", ('["admin"]',))
    problems = [p.problem for p in verify(setup.crm).problems]
    assert problems == ["grants log: row 2: its hash does not match its contents and the "
                        "previous row's hash (it, or the row before it, was altered or moved)"]  # fmt: skip
    raw(setup.url, f"DELETE FROM {GRANTS_TABLE} WHERE seq = 1")
    problems = [p.problem for p in verify(setup.crm).problems]
    assert "grants log: row 1 is missing (deleted behind the store's back)" in problems


def test_two_writers_at_once_keep_one_dense_chain(setup: Setup) -> None:
    """Each change is decided and chained under the log's write lock: two CRMs (two
    connections) adding users at the same time leave one chain, numbered densely."""

    def add_users(tag: str) -> None:
        with CRM(setup.url) as crm:
            users = Users(crm)
            for i in range(6):
                users.add(setup.name(f"{tag}{i}"), ["analyst"])

    threads = [threading.Thread(target=add_users, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [c.seq for c in setup.users.changes()] == list(range(1, 13))
    assert len(setup.users.list()) == 12
    assert verify(setup.crm).ok


# --- PostgreSQL: the users are logins in the groups of roles init ----------------------------


def _member(setup: Setup, user: str, role: str) -> bool:
    with setup.connect() as conn:
        row = conn.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER')", (login_name(user), f"{setup.prefix}crm_{role}")
        ).fetchone()
    return bool(row and row[0])


def test_a_user_is_a_login_in_the_groups_of_its_roles(pg_setup: Setup) -> None:
    setup = pg_setup
    li = setup.name("User:Li")  # its login: lower case, ':' as '_'
    setup.users.add(li, ["staff"], owner="staff:li")
    assert login_name(li) == f"{setup.prefix}user_li"
    with setup.connect(setup.login_url(li)) as conn:  # it connects (trust on this server)
        assert conn.execute("SELECT current_user").fetchone() == (login_name(li),)
        attributes = attributes_for(conn, login_name(li))  # what pg_roles would read
    assert attributes is not None and attributes.owner == "staff:li"
    assert _member(setup, li, "staff") and not _member(setup, li, "manager")
    session = principal_for_session(parse_store_url(setup.login_url(li)))
    assert session.roles == frozenset({Role.STAFF}) and session.owner == "staff:li"
    setup.users.grant(li, "manager", team=["staff:wu"])
    assert _member(setup, li, "manager")
    # the session's principal carries what membership cannot: the manager's team
    session = principal_for_session(parse_store_url(setup.login_url(li)))
    assert session.roles == {Role.STAFF, Role.MANAGER} and session.team == {"staff:wu"}
    setup.users.revoke(li, "staff")
    assert not _member(setup, li, "staff") and _member(setup, li, "manager")
    setup.users.remove(li)
    with setup.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                            (login_name(li),)).fetchone() is None  # fmt: skip


def test_what_the_database_refuses_stores_no_row(pg_setup: Setup) -> None:
    setup = pg_setup
    li, taken = setup.name("li"), setup.name("taken")
    with setup.connect() as conn:  # a role that is not a user of ours: never taken over
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(taken)))
    with pytest.raises(GrantError, match="exists already"):
        setup.users.add(taken, ["admin"])
    setup.users.add(li, ["staff"])
    with setup.connect() as conn:  # the login owns something: DROP ROLE is refused
        conn.execute(sql.SQL("CREATE TABLE {}.owned_by_li (x int)").format(
            sql.Identifier(parse_store_url(setup.url).schema)))  # fmt: skip
        conn.execute(sql.SQL("ALTER TABLE owned_by_li OWNER TO {}").format(
            sql.Identifier(login_name(li))))  # fmt: skip
    with pytest.raises(GrantError, match="owns objects"):
        setup.users.remove(li)
    assert [u.user for u in setup.users.list()] == [li]  # the row went with the refusal
    assert _member(setup, li, "staff")
    assert [c.change for c in setup.users.changes()] == ["add"]


def test_a_change_on_postgresql_needs_roles_init_first(postgres_url: str) -> None:
    with CRM(postgres_url) as crm:
        users = Users(crm)
        with pytest.raises(GrantError, match=r"run `crm-es roles init`"):
            users.add(f"t{uuid.uuid4().hex[:8]}_li", ["staff"])
        assert users.changes() == []


def test_two_users_with_one_last_name_part_hold_customers_apart(setup: Setup) -> None:
    east, west = setup.name("east:li"), setup.name("west:li")
    setup.users.add(east, ["staff"])
    setup.users.add(west, ["staff"])
    owners = {setup.users.principal(u).owner for u in (east, west)}
    assert owners == {f"staff:{login_name(east)}", f"staff:{login_name(west)}"}
