"""``crm-es users`` and ``crm-es audit access --grants`` through the command line: users added,
granted, revoked, removed and listed (JSON piped, a table, CSV), every change listed with who
made it, mistakes as usage errors or ``Error:`` lines, ``audit verify`` naming an edited grants
row; on PostgreSQL, after ``crm-es roles init``, a user is a login that connects in its group,
and the login itself may not change grants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from crm_es.store.grants import GRANTS_TABLE
from crm_es.store.pg_roles import drop_roles
from crm_es.store.url import parse_store_url
from tests.helpers.cli import run
from tests.helpers.raw_store import raw


@pytest.fixture
def url(sqlite_url: str) -> str:
    code, _, err = run(sqlite_url, "init")
    assert code == 0, err
    return sqlite_url


def ok(url: str, *args: str) -> str:
    code, out, err = run(url, *args)
    assert code == 0, err
    return out


def test_users_are_added_changed_and_listed(url: str) -> None:
    added = json.loads(ok(url, "users", "add", "li", "--role", "staff", "--owner", "staff:li"))
    assert (added["user"], added["roles"], added["owner"]) == ("li", ["staff"], "staff:li")
    ok(url, "users", "add", "wang", "--role", "manager", "--role", "analyst",
       "--team", "staff:li, staff:wu")  # fmt: skip
    ok(url, "users", "add", "api:shop", "--role", "integration",
       "--commands", "record_purchase,grant_points")  # fmt: skip
    granted = json.loads(ok(url, "users", "grant", "li", "--role", "auditor", "--pii"))
    assert (granted["roles"], granted["pii"]) == (["auditor", "staff"], True)
    revoked = json.loads(ok(url, "users", "revoke", "li", "--role", "auditor"))
    assert (revoked["roles"], revoked["pii"]) == (["staff"], False)
    assert json.loads(ok(url, "users", "remove", "api:shop")) == {"removed": "api:shop"}
    listed = json.loads(ok(url, "users", "list"))
    assert [(u["user"], u["roles"], u["team"]) for u in listed] == [
        ("li", ["staff"], []), ("wang", ["analyst", "manager"], ["staff:li", "staff:wu"])]  # fmt: skip
    table = ok(url, "users", "list", "--format", "table")
    assert table.split()[:3] == ["user", "roles", "owner"]
    assert "analyst,manager" in table and "staff:li,staff:wu" in table


def test_audit_access_grants_lists_every_change_and_filters(url: str) -> None:
    ok(url, "users", "add", "li", "--role", "staff")
    ok(url, "users", "add", "wu", "--role", "analyst")
    ok(url, "users", "grant", "li", "--role", "manager", "--team", "staff:wu")
    changes = json.loads(ok(url, "audit", "access", "--grants"))
    assert [(c["seq"], c["by"], c["user"], c["change"], c["roles"]) for c in changes] == [
        (1, "cli", "li", "add", ["staff"]), (2, "cli", "wu", "add", ["analyst"]),
        (3, "cli", "li", "grant", ["manager"])]  # fmt: skip
    assert changes[2]["team"] == ["staff:wu"] and changes[2]["owner"] is None
    assert [c["seq"] for c in json.loads(ok(url, "audit", "access", "--grants", "--user", "li"))
            ] == [1, 3]  # fmt: skip
    assert json.loads(ok(url, "audit", "access", "--grants", "--by", "user:x")) == []
    csv = ok(url, "audit", "access", "--grants", "--format", "csv").splitlines()
    assert csv[0] == "seq,at,by,user,change,roles,owner,team,pii,command_types"
    assert csv[3].endswith(",cli,li,grant,manager,,staff:wu,,")


def test_mistakes_are_usage_errors_or_error_lines_and_store_nothing(url: str) -> None:
    ok(url, "users", "add", "li", "--role", "staff")
    for args, status, message in [
        (("users", "add", "wu"), 2, "give a role with --role"),
        (("users", "add", "--role", "staff"), 2, "give the user's NAME"),
        (("users", "grant", "li"), 2, "give a role with --role"),
        (("users", "add", "wu", "--role", "boss"), 1, "Error: unknown role 'boss'; roles: "),
        (("users", "add", "li", "--role", "analyst"), 1, "exists already"),
        (("users", "revoke", "li", "--role", "auditor"), 1, "does not hold 'auditor'"),
        (("users", "grant", "nobody", "--role", "staff"), 1, "unknown user 'nobody'"),
        (("users", "remove", "nobody"), 1, "unknown user 'nobody'"),
        (("users", "add", "a b", "--role", "staff"), 1, "user name 'a b' must be"),
        (("users", "add", "wu", "--role", "staff", "--pii"), 1, "pii is for an auditor"),
        (("audit", "access", "C-1", "--grants"), 2, "not a CUSTOMER's reads"),
        (("audit", "access", "--user", "li"), 2, "--user goes with --grants"),
    ]:
        code, _, err = run(url, *args)
        assert (code, "Traceback" in err) == (status, False), (args, err)
        assert message in err, (args, err)
    assert len(json.loads(ok(url, "audit", "access", "--grants"))) == 1


def test_verify_names_an_edited_grants_row(url: str) -> None:
    ok(url, "users", "add", "li", "--role", "staff")
    ok(url, "users", "grant", "li", "--role", "analyst")
    raw(url, f"UPDATE {GRANTS_TABLE} SET user_name = ? WHERE seq = 1", ("mallory",))
    code, out, err = run(url, "audit", "verify")
    assert code == 1 and "grants log: row 1: its hash does not match" in err + out


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A store with its group roles (a prefix of this test) and the owner's URL."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    config = parse_store_url(postgres_url)
    try:
        ok(postgres_url, "init")
        ok(postgres_url, "roles", "init", "--prefix", prefix)
        yield postgres_url, prefix
    finally:
        with psycopg.connect(config.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(f"{prefix}li")))
        drop_roles(config, prefix)


def test_users_add_on_postgresql_makes_a_login_in_its_group(pg: tuple[str, str]) -> None:
    url, prefix = pg
    li = f"{prefix}li"
    ok(url, "users", "add", li, "--role", "staff", "--owner", "staff:li")
    login_url = url.replace("postgresql://postgres@", f"postgresql://{li}@")
    config = parse_store_url(login_url)
    member = "SELECT pg_has_role(current_user, %s, 'MEMBER')"
    with psycopg.connect(config.conninfo(), autocommit=True) as conn:  # it can connect
        assert conn.execute(member, (f"{prefix}crm_staff",)).fetchone() == (True,)
    code, _, err = run(login_url, "users", "add", f"{prefix}mallory", "--role", "admin")
    assert code == 1 and "permission denied" in err and f"pg:{li} (staff)" in err
    ok(url, "users", "revoke", li, "--role", "staff")
    with psycopg.connect(config.conninfo(), autocommit=True) as conn:
        assert conn.execute(member, (f"{prefix}crm_staff",)).fetchone() == (False,)
    changes = json.loads(ok(url, "audit", "access", "--grants"))
    assert [(c["by"], c["change"]) for c in changes] == [("pg:postgres", "add"),
                                                         ("pg:postgres", "revoke")]  # fmt: skip
