"""PostgreSQL roles that hold, even for a direct connection, what the service's policy promises.

:func:`init_roles` (``crm-es roles init``) creates one NOLOGIN group role per service role
(:class:`~crm_es.domain.principals.Role`), named ``<prefix>crm_<role>`` (``crm_staff``; the
prefix, empty by default, keeps two installations of one cluster apart and is kept in the
store's settings), and grants them what they may do on the store's tables in its schema. A
login role is given a group with ``GRANT crm_staff TO li``. In the database itself:

- the events are append-only for everyone: a trigger refuses UPDATE, DELETE and TRUNCATE,
  and no group role holds those privileges (the writers' table lock is taken by the owner's
  ``crm_events_lock()``, see :mod:`crm_es.store.postgres_recorder`);
- no group role may select ``key_material``: keys are reached through SECURITY DEFINER
  functions that check the session's role and log who fetched which customer's key, when and
  why in ``crm_key_reads`` in the same transaction (:mod:`crm_es.store.keys`);
- only privacy officers and admins may execute the erase function;
- analysts read the read models and the settings, nothing else.

:func:`principal_for_session` turns the session's role into the service's principal, so the
command line on PostgreSQL needs no second password. Running it twice is safe: every grant is
revoked and given again, and objects are created or replaced. docs/security.md lists what
each role may do and the test that shows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from psycopg import sql

from crm_es.domain.errors import CrmError
from crm_es.domain.events import PersonalDataErased
from crm_es.domain.principals import Principal, Role
from crm_es.store.access_log import ACCESS_TABLE
from crm_es.store.database import Tx
from crm_es.store.grants import GRANTS_TABLE, attributes_for
from crm_es.store.grants import create_table as create_grants_table
from crm_es.store.keys import KEY_TABLE
from crm_es.store.pg_functions import (
    KEY_READS_TABLE,
    guard_erasures,
    key_functions,
    key_reads_table,
    refuse_changes,
    stamp_logins,
)
from crm_es.store.recorders import COMMANDS_TABLE
from crm_es.store.settings import SETTINGS_HISTORY_TABLE, SETTINGS_TABLE
from crm_es.store.store import APPLICATION_NAME, OLDER_SECRETS_SEALED
from crm_es.store.url import StoreConfig
from crm_es.store.wipe import PERSONAL_TABLES

PREFIX_SETTING: Final = "pg_role_prefix"
EVENTS_TABLE: Final = f"{APPLICATION_NAME}_events"
SNAPSHOTS_TABLE: Final = f"{APPLICATION_NAME}_snapshots"
READ_MODELS_TABLE: Final = "crm_read_models"  # the projections' state (generations.py)
WRITERS: Final = (Role.ADMIN, Role.MANAGER, Role.STAFF, Role.PRIVACY_OFFICER, Role.INTEGRATION)
HISTORY_READERS: Final = (*WRITERS, Role.AUDITOR)  # events, snapshots, records, access log
ERASERS: Final = (Role.PRIVACY_OFFICER, Role.ADMIN)
KEY_LOG_READERS: Final = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.AUDITOR)
_PREFIX = re.compile(r"([a-z][a-z0-9_]{0,29})?")


class RolesError(CrmError):
    pass


def group_role(prefix: str, role: Role) -> str:
    return f"{prefix}crm_{role.value}"


def init_roles(config: StoreConfig, prefix: str = "") -> dict[str, Any]:
    """Create the group roles and grant them the store's tables (see the module doc); what
    was done. Run by the store's owner with CREATEROLE, or by a superuser."""
    if not _PREFIX.fullmatch(prefix):
        msg = f"role prefix {prefix!r} must be 1-30 lower-case letters, digits or _"
        raise RolesError(msg)
    conn = _connect(config, "roles init")
    with conn, conn.transaction():
        schema = str(conn.execute("SELECT current_schema()").fetchone()[0])
        # Not while a store of this schema is creating its tables (url.schema_lock's key).
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"crm_es:ddl:{schema}",)
        )
        owner = _store_owner(conn, schema)
        prefix = _claim_prefix(conn, prefix)
        names = {role: group_role(prefix, role) for role in Role}
        created = _create_group_roles(conn, names.values())
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
        s = sql.Identifier(schema)
        conn.execute(key_reads_table(s))
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (name TEXT PRIMARY KEY)").format(
                s, sql.Identifier(PERSONAL_TABLES)
            )
        )
        with conn.cursor() as cursor:  # the grants log, which a login's principal is read from
            create_grants_table(Tx(cursor, True))
        for statement in refuse_changes(s, (EVENTS_TABLE, KEY_READS_TABLE, GRANTS_TABLE)):
            conn.execute(statement)
        functions = key_functions(
            schema,
            readers=[names[r] for r in HISTORY_READERS],
            writers=[names[r] for r in WRITERS],
            erasers=[names[r] for r in ERASERS],
        )
        for statement in functions.statements:
            conn.execute(statement)
        erasers = [names[r] for r in ERASERS]
        for statement in guard_erasures(s, EVENTS_TABLE, PersonalDataErased.TOPIC, erasers):
            conn.execute(statement)
        for statement in stamp_logins(s, EVENTS_TABLE):
            conn.execute(statement)
        _grant(conn, schema, owner, names, functions.grants)
    return {
        "schema": schema,
        "owner": owner,
        "roles": {role.value: name for role, name in names.items()},
        "created": created,
    }


def _connect(config: StoreConfig, what: str) -> Any:
    if not config.is_postgres:
        msg = (
            f"{what} needs a PostgreSQL store: an SQLite store is one file and one user (the "
            "file is the boundary), and the service's policy applies (docs/security.md)"
        )
        raise RolesError(msg)
    import psycopg

    conn = psycopg.connect(config.conninfo())
    if config.schema:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(config.schema)))
        conn.commit()
    return conn


def _store_owner(conn: Any, schema: str) -> str:
    """The role that owns the store's tables; refused unless the store was opened by this
    version (roles init grants what is there) and this session may act as its owner."""
    row = conn.execute(
        "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = %s",
        (schema, EVENTS_TABLE),
    ).fetchone()
    sealed = (
        row
        and conn.execute(
            sql.SQL("SELECT 1 FROM {}.{} WHERE name = %s").format(
                sql.Identifier(schema), sql.Identifier(SETTINGS_TABLE)
            ),
            (OLDER_SECRETS_SEALED,),
        ).fetchone()
    )
    if not sealed:
        msg = f"no store in schema {schema!r} yet: open it once as its owner (crm-es init)"
        raise RolesError(msg)
    owner = str(row[0])
    if not conn.execute("SELECT pg_has_role(%s, 'USAGE')", (owner,)).fetchone()[0]:
        msg = f"roles init must run as the store's owner {owner!r} (or a superuser)"
        raise RolesError(msg)
    return owner


def _claim_prefix(conn: Any, prefix: str) -> str:
    """The store's role prefix: the one given the first time; another one later is an error
    (the functions and grants name the roles)."""
    table = sql.Identifier(SETTINGS_TABLE)
    conn.execute(
        sql.SQL("INSERT INTO {} (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
            table
        ),
        (PREFIX_SETTING, prefix),
    )
    stored = str(
        conn.execute(
            sql.SQL("SELECT value FROM {} WHERE name = %s").format(table), (PREFIX_SETTING,)
        ).fetchone()[0]
    )
    if stored != prefix:
        raise RolesError(f"this store's roles are named with the prefix {stored!r}")
    return stored


def _create_group_roles(conn: Any, names: Iterable[str]) -> list[str]:
    import psycopg

    created = []
    for name in names:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            continue
        try:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            msg = "roles init needs a role with CREATEROLE (or a superuser) to create roles"
            raise RolesError(msg) from None
        created.append(name)
    return created


def _grant(
    conn: Any,
    schema: str,
    owner: str,
    names: dict[Role, str],
    function_grants: Sequence[tuple[str, str, Sequence[str]]],
) -> None:
    """Revoke whatever the group roles held in the schema, then grant what each may do."""
    s = sql.Identifier(schema)
    everyone = list(names.values())

    def to(roles: Iterable[Role]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(names[r]) for r in roles)

    def table(name: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(s, sql.Identifier(name))

    all_roles = sql.SQL(", ").join(sql.Identifier(n) for n in everyone)
    run = conn.execute
    run(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, all_roles))
    run(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, all_roles))
    run(sql.SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {} FROM {}").format(s, all_roles))
    run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, all_roles))
    # Everyone opens the store (its settings) and reads the read models: the ones there now,
    # and (default privileges) the generations the owner's projections create later.
    read_models = [
        str(r[0])
        for r in run(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s "
            "AND (tablename LIKE 'rm\\_%%' OR tablename = %s)",
            (schema, READ_MODELS_TABLE),
        ).fetchall()
    ]
    for name in (SETTINGS_TABLE, SETTINGS_HISTORY_TABLE, PERSONAL_TABLES, GRANTS_TABLE,
                 *read_models):  # fmt: skip
        run(sql.SQL("GRANT SELECT ON {} TO {}").format(table(name), all_roles))
    personal = [str(r[0]) for r in run(sql.SQL("SELECT name FROM {}").format(
        table(PERSONAL_TABLES))).fetchall()]  # fmt: skip
    for name in set(personal) & set(read_models):  # analysts see aggregates, not birthdays
        run(sql.SQL("REVOKE SELECT ON {} FROM {}").format(table(name), to([Role.ANALYST])))
    run(
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
        ).format(sql.Identifier(owner), s, all_roles)
    )
    # The history: writers append to it, auditors read it; nobody updates or deletes it.
    for name in (EVENTS_TABLE, SNAPSHOTS_TABLE, COMMANDS_TABLE):
        run(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(table(name), to(WRITERS)))
        run(sql.SQL("GRANT SELECT ON {} TO {}").format(table(name), to([Role.AUDITOR])))
    run(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, to(WRITERS)))
    run(
        sql.SQL("GRANT EXECUTE ON FUNCTION {}() TO {}").format(
            table(f"{EVENTS_TABLE}_lock"), to(WRITERS)
        )
    )
    # Reading personal data is logged by the service (every role that may read it).
    run(
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(table(ACCESS_TABLE), to(HISTORY_READERS))
    )
    # Whether a customer's key exists or was erased, never the key itself.
    run(
        sql.SQL("GRANT SELECT (customer_id, created_at, erased_at) ON {} TO {}").format(
            table(KEY_TABLE), to(HISTORY_READERS)
        )
    )
    run(sql.SQL("GRANT SELECT ON {} TO {}").format(table(KEY_READS_TABLE), to(KEY_LOG_READERS)))
    for function, signature, grantees in function_grants:
        run(
            sql.SQL("GRANT EXECUTE ON FUNCTION {}({}) TO {}").format(
                table(function),
                sql.SQL(signature),
                sql.SQL(", ").join(sql.Identifier(n) for n in grantees),
            )
        )


def withhold_personal_table(tx: Tx, table: str) -> None:
    """Take SELECT on a read-model table that holds personal data from the analysts (who see
    aggregates only) once its generation is created, after the default privileges gave it to
    every group. PostgreSQL only; nothing to do before roles init."""
    found = tx.query(f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?", (PREFIX_SETTING,))
    analysts = group_role(str(found[0][0]), Role.ANALYST) if found else None
    if analysts and tx.query("SELECT 1 FROM pg_roles WHERE rolname = ?", (analysts,)):
        tx.execute(f'REVOKE SELECT ON {table} FROM "{analysts}"')


def principal_for_session(config: StoreConfig) -> Principal:
    """The principal of the database session's role: ``pg:<current_user>`` with the roles of
    the installation's groups it is a member of; the store's owner or a superuser without
    such a membership is an admin. A staff member holds customers as ``staff:<current_user>``.
    """
    conn = _connect(config, "a session principal")
    with conn:
        user, session, superuser, owns = conn.execute(
            "SELECT current_user, session_user, rolsuper, COALESCE((SELECT "
            "pg_has_role(nspowner, 'USAGE') FROM pg_namespace WHERE nspname = current_schema()), "
            "false) FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if user != session:  # SET ROLE to a group would hide who acts behind the group's name
            msg = (
                f"the session acts as {user!r}, not as its login {session!r}: connect as the login"
            )
            raise RolesError(msg)
        prefix = _stored_prefix(conn)
        held = attributes_for(conn, str(user))  # what `crm-es users` gave beyond the groups
        roles: set[Role] = set()
        if prefix is not None and not superuser:
            wanted = {group_role(prefix, role): role for role in Role}
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) "
                "AND pg_has_role(current_user, oid, 'MEMBER')",
                (list(wanted),),
            ).fetchall()
            roles = {wanted[str(r[0])] for r in rows}
    if not roles and (superuser or owns):
        roles = {Role.ADMIN}
    if held is None:
        owner = f"staff:{user}" if Role.STAFF in roles else None
        return Principal(name=f"pg:{user}", roles=frozenset(roles), owner=owner)
    return Principal(
        name=f"pg:{user}",
        roles=frozenset(roles),
        owner=held.owner or (f"staff:{user}" if Role.STAFF in roles else None),
        team=frozenset(held.team),
        pii=held.pii,
        command_types=frozenset(held.command_types),
    )


def _stored_prefix(conn: Any) -> str | None:
    if conn.execute("SELECT to_regclass(%s)", (SETTINGS_TABLE,)).fetchone()[0] is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT value FROM {} WHERE name = %s").format(sql.Identifier(SETTINGS_TABLE)),
        (PREFIX_SETTING,),
    ).fetchone()
    return None if row is None else str(row[0])


def drop_roles(config: StoreConfig, prefix: str) -> None:
    """Drop the group roles ``prefix`` names, and what they were granted in this database (an
    installation being removed; the tests' own roles). Other databases' grants stay."""
    conn = _connect(config, "dropping roles")
    with conn, conn.transaction():
        for role in Role:
            name = group_role(prefix, role)
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
