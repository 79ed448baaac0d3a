"""The server-side objects ``crm-es roles init`` installs: the append-only trigger, the key-read
log and the SECURITY DEFINER functions through which the group roles reach keys and erase them.

Each function runs as the store's owner with a fixed ``search_path`` and names every table with
its schema, checks that the *session's* role (``session_user``: the login, which a ``SET ROLE``
does not change; inside a SECURITY DEFINER function ``current_user`` is the owner) is a member
of a group allowed to call it, and logs the access in :data:`KEY_READS_TABLE` in the caller's
transaction: a key fetched, or an erasure, without its row is not possible. EXECUTE is revoked
from PUBLIC and granted per group (:mod:`crm_es.store.pg_roles`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from psycopg import sql

from crm_es.store.keys import CREATE_KEY_FUNCTION, ERASE_KEYS_FUNCTION, KEY_TABLE, READ_KEY_FUNCTION
from crm_es.store.settings import SETTINGS_TABLE
from crm_es.store.wipe import PENDING_WIPE, PERSONAL_TABLES

KEY_READS_TABLE: Final = "crm_key_reads"
REFUSE_FUNCTION: Final = "crm_refuse_change"
# Key times as keys.py writes them (datetime.isoformat() in UTC).
_NOW: Final = (
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
)
_DEFINER: Final = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"


def key_reads_table(s: sql.Identifier) -> sql.Composed:
    """Who (the login) fetched, created or erased which customer's key, when and why."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {}.{} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "at timestamptz NOT NULL DEFAULT clock_timestamp(), login text NOT NULL, "
        "customer_id text NOT NULL, action text NOT NULL, purpose text)"
    ).format(s, sql.Identifier(KEY_READS_TABLE))


def refuse_changes(s: sql.Identifier, tables: Sequence[str]) -> list[sql.Composed]:
    """Triggers that refuse UPDATE, DELETE and TRUNCATE of ``tables`` to everyone, the owner
    too (who can drop them: keep that role offline; the chains still show a change)."""
    refuse = sql.SQL("{}.{}").format(s, sql.Identifier(REFUSE_FUNCTION))
    statements = [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '% of %.% refused: the table is append-only', "
            "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
            "END $$"
        ).format(refuse),
        sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(refuse),
    ]
    for name in tables:
        table = sql.SQL("{}.{}").format(s, sql.Identifier(name))
        rows, whole = sql.Identifier(f"{name}_append_only"), sql.Identifier(f"{name}_no_truncate")
        statements += [
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {} BEFORE UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(rows, table, refuse),
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {} BEFORE TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(whole, table, refuse),
            # Also under session_replication_role = replica (a superuser's bulk load).
            sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, rows),
            sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, whole),
        ]
    return statements


ERASURE_GUARD_FUNCTION: Final = "crm_erasure_guard"


def guard_erasures(
    s: sql.Identifier, events_table: str, topic: str, erasers: Sequence[str]
) -> list[sql.Composed]:
    """A trigger that lets only the erasers' groups (and the table's owner) insert an erasure
    event: the key deletion is the erase function's, and a staff login must not record the
    event that would make a privacy officer "finish" an erasure nobody asked for."""
    guard = sql.SQL("{}.{}").format(s, sql.Identifier(ERASURE_GUARD_FUNCTION))
    table = sql.SQL("{}.{}").format(s, sql.Identifier(events_table))
    allowed = sql.SQL(" OR ").join(
        [
            sql.SQL(
                "pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),"
                " 'MEMBER')"
            ),
            *(sql.SQL("pg_has_role(session_user, {}, 'MEMBER')").format(sql.Literal(g))
              for g in erasers),
        ]
    )  # fmt: skip
    trigger = sql.Identifier(f"{events_table}_erasure_guard")
    return [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.topic = {} AND NOT ({}) THEN RAISE EXCEPTION "
            "'permission denied: % may not record an erasure (privacy officers and admins do)', "
            "session_user USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$"
        ).format(guard, sql.Literal(topic), allowed),
        sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(guard),
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(trigger, table, guard),
        sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, trigger),
    ]


LOGIN_COLUMN: Final = "recorded_by"
STAMP_FUNCTION: Final = "crm_stamp_login"


def stamp_logins(s: sql.Identifier, events_table: str) -> list[sql.Composed]:
    """A column the database fills with the login (``session_user``) that inserted each event,
    whatever the insert says: the actor inside the event is the writer's word, this column is
    the database's, and ``audit verify`` compares them (:mod:`crm_es.audit.login_audit`).
    Events stored before roles init have none."""
    stamp = sql.SQL("{}.{}").format(s, sql.Identifier(STAMP_FUNCTION))
    table = sql.SQL("{}.{}").format(s, sql.Identifier(events_table))
    trigger = sql.Identifier(f"{events_table}_login_stamp")
    return [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(
            table, sql.Identifier(LOGIN_COLUMN)
        ),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "NEW.{} := session_user; RETURN NEW; END $$"
        ).format(stamp, sql.Identifier(LOGIN_COLUMN)),
        sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(stamp),
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()"
        ).format(trigger, table, stamp),
        sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, trigger),
    ]


@dataclass
class KeyFunctions:
    statements: list[sql.Composed] = field(default_factory=list)
    # (function, argument types, the group roles that may execute it)
    grants: list[tuple[str, str, Sequence[str]]] = field(default_factory=list)


def key_functions(
    schema: str, readers: Sequence[str], writers: Sequence[str], erasers: Sequence[str]
) -> KeyFunctions:
    """The read, create and erase functions of the keys, each allowed to its groups."""
    s = sql.Identifier(schema)
    names = {
        "keys": sql.SQL("{}.{}").format(s, sql.Identifier(KEY_TABLE)),
        "reads": sql.SQL("{}.{}").format(s, sql.Identifier(KEY_READS_TABLE)),
        "settings": sql.SQL("{}.{}").format(s, sql.Identifier(SETTINGS_TABLE)),
        "registry": sql.SQL("{}.{}").format(s, sql.Identifier(PERSONAL_TABLES)),
        "now": sql.SQL(_NOW),
        "definer": sql.SQL(_DEFINER),
        "log": sql.SQL(
            "INSERT INTO {}.{} (login, customer_id, action, purpose) VALUES (session_user, "
        ).format(s, sql.Identifier(KEY_READS_TABLE)),
    }
    out = KeyFunctions()

    def define(function: str, signature: str, grantees: Sequence[str], body: str) -> None:
        target = sql.SQL("{}.{}").format(s, sql.Identifier(function))
        allowed = sql.SQL(" OR ").join(
            sql.SQL("pg_has_role(session_user, {}, 'MEMBER')").format(sql.Literal(g))
            for g in grantees
        )
        refusal = sql.Literal(f"permission denied: %s may not call {function} (needs one of: "
                              f"{', '.join(grantees)})")  # fmt: skip
        out.statements += [
            sql.SQL("CREATE OR REPLACE FUNCTION {}").format(target)
            + sql.SQL(body).format(
                allowed=allowed,
                refused=sql.SQL(
                    "RAISE EXCEPTION USING MESSAGE = format({}, session_user), "
                    "ERRCODE = 'insufficient_privilege'"
                ).format(refusal),
                **names,
            ),
            sql.SQL("REVOKE ALL ON FUNCTION {}({}) FROM PUBLIC").format(target, sql.SQL(signature)),
        ]
        out.grants.append((function, signature, grantees))

    define(
        READ_KEY_FUNCTION,
        "text, text",
        readers,
        "(p_customer_id text, p_purpose text DEFAULT NULL) RETURNS text {definer} AS $$ "
        "BEGIN IF NOT ({allowed}) THEN {refused}; END IF; "
        "{log} p_customer_id, 'read', p_purpose); "
        "RETURN (SELECT key_material FROM {keys} WHERE customer_id = p_customer_id); END $$",
    )
    define(
        CREATE_KEY_FUNCTION,
        "text, text, text",
        writers,
        # Only wrapped material (keys.py's "w1:"): a clear key would be planted.
        "(p_customer_id text, p_material text, p_purpose text DEFAULT NULL) RETURNS text "
        "{definer} AS $$ BEGIN IF NOT ({allowed}) THEN {refused}; END IF; "
        "IF p_material NOT LIKE 'w1:%' THEN RAISE EXCEPTION 'a key must be wrapped' "
        "USING ERRCODE = 'check_violation'; END IF; "
        "INSERT INTO {keys} (customer_id, key_material, created_at) "
        "VALUES (p_customer_id, p_material, {now}) ON CONFLICT (customer_id) DO NOTHING; "
        "{log} p_customer_id, 'create', p_purpose); "
        "RETURN (SELECT key_material FROM {keys} WHERE customer_id = p_customer_id); END $$",
    )
    # The erasure: tombstones for the keys (as keys.py writes them), the customers' rows out of
    # every registered personal read-model table, and the rewrite of the freed bytes left
    # pending (only the owner may rewrite a table: `crm-es maintain` finishes it).
    define(
        ERASE_KEYS_FUNCTION,
        "text[], text",
        erasers,
        "(p_customer_ids text[], p_purpose text DEFAULT NULL) RETURNS integer {definer} AS $$ "
        "DECLARE v_id text; v_material text; v_existed integer := 0; v_now text := {now}; "
        "v_table text; v_rows bigint; v_tables text[] := '{{}}'; "
        "BEGIN IF NOT ({allowed}) THEN {refused}; END IF; "
        "FOREACH v_id IN ARRAY p_customer_ids LOOP "
        "SELECT key_material INTO v_material FROM {keys} WHERE customer_id = v_id FOR UPDATE; "
        "IF v_material IS NOT NULL THEN v_existed := v_existed + 1; END IF; "
        "INSERT INTO {keys} AS k (customer_id, key_material, created_at, erased_at) "
        "VALUES (v_id, NULL, v_now, v_now) ON CONFLICT (customer_id) DO UPDATE "
        "SET key_material = NULL, erased_at = COALESCE(k.erased_at, v_now); "
        "{log} v_id, 'erase', p_purpose); END LOOP; "
        # Read-model tables only, whatever else the registry names (rm_<model>_<table>_gN).
        "FOR v_table IN SELECT name FROM {registry} WHERE name LIKE 'rm\\_%' ORDER BY name LOOP "
        f"EXECUTE format('DELETE FROM %I.%I WHERE customer_id = ANY($1)', "
        f"{sql.Literal(schema).as_string(None)}, v_table) USING p_customer_ids; "
        "GET DIAGNOSTICS v_rows = ROW_COUNT; "
        "IF v_rows > 0 THEN v_tables := v_tables || v_table; END IF; END LOOP; "
        f"IF v_existed > 0 THEN v_tables := v_tables || '{KEY_TABLE}'::text; END IF; "
        f"IF cardinality(v_tables) > 0 THEN INSERT INTO {{settings}} AS st (name, value) "
        f"VALUES ('{PENDING_WIPE}', (SELECT json_agg(t ORDER BY t)::text "
        "FROM unnest(v_tables) AS t)) ON CONFLICT (name) DO UPDATE "
        "SET value = (SELECT json_agg(t ORDER BY t)::text FROM ("
        "SELECT json_array_elements_text(COALESCE(NULLIF(st.value, ''), '[]')::json) AS t "
        "UNION SELECT unnest(v_tables)) AS merged); END IF; "
        "RETURN v_existed; END $$",
    )
    return out
