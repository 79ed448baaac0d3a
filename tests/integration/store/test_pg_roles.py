"""``crm-es roles init``: PostgreSQL itself refuses what a role may not do, for a direct
connection as for the app (issue 16, item 4).

One store, its roles initialised (twice: it is idempotent), and a login in each group, made
once for the module; each test connects as those logins with psycopg, or opens the app and
the command line with their URLs. Roles are cluster-wide, so theirs carry a prefix of this run
and are dropped afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crm_es import CRM
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.errors import CrmError, PermissionDenied
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.principals import Principal, Role
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports import Reports
from crm_es.store.pg_roles import drop_roles, init_roles, principal_for_session
from crm_es.store.url import parse_store_url
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres

GROUPS = ("admin", "staff", "analyst", "auditor", "privacy_officer")


@dataclass
class Installation:
    url: str  # the owner's (the superuser postgres)
    prefix: str
    logins: dict[str, str]  # group -> login role
    c1: str  # customer ids: C-1 owned by the staff login, C-2 by someone else
    c2: str

    def url_of(self, group: str) -> str:
        return self.url.replace("postgresql://postgres@", f"postgresql://{self.logins[group]}@")

    def connect(self, group: str | None = None) -> psycopg.Connection[Any]:
        config = parse_store_url(self.url if group is None else self.url_of(group))
        conn = psycopg.connect(config.conninfo(), autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(config.schema)))
        return conn

    def app(self, group: str) -> CRM:
        url = self.url_of(group)
        return CRM(url, principal=principal_for_session(parse_store_url(url)))


@pytest.fixture(scope="module")
def inst() -> Iterator[Installation]:
    require_postgres()
    url, schema = new_postgres_url()
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    logins = {group: f"{prefix}{group}_login" for group in GROUPS}
    config = parse_store_url(url)
    try:
        with CRM(url) as crm:
            staff = f"staff:{logins['staff']}"
            c1 = crm.register_customer(external_ref="C-1", name="王芳", owner=staff).customer_id
            c2 = crm.register_customer(external_ref="C-2", name="李雷", owner="staff:wu")
            crm.change_tags(customer="C-2", add=["vip"])  # a row of a personal read model
            ProjectionEngine(crm, read_models()).catch_up_all()  # read-model tables
        assert init_roles(config, prefix)["created"]
        assert init_roles(config, prefix)["created"] == []  # safe to run twice
        with psycopg.connect(config.conninfo(), autocommit=True) as conn:
            for group, login in logins.items():
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                        sql.Identifier(login), sql.Identifier(f"{prefix}crm_{group}")
                    )
                )
        yield Installation(url, prefix, logins, str(c1), str(c2.customer_id))
    finally:
        drop_schema(schema)
        with psycopg.connect(config.conninfo(), autocommit=True) as conn:
            for login in logins.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
        drop_roles(config, prefix)


def refused(conn: psycopg.Connection[Any], statement: str, *params: Any) -> str:
    """The database's refusal of ``statement`` (it must be refused)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement, params or None)
    return str(caught.value)


def test_no_role_updates_deletes_or_truncates_an_event(inst: Installation) -> None:
    with inst.connect() as conn:
        stored = conn.execute("SELECT count(*), sum(hashtext(encode(state, 'hex'))) "
                              "FROM crm_events").fetchone()  # fmt: skip
    for group in ("staff", "admin", "privacy_officer", None):  # None: the owner, a superuser
        with inst.connect(group) as conn:
            why = [
                refused(conn, "UPDATE crm_events SET topic = topic"),
                refused(conn, "DELETE FROM crm_events"),
                refused(conn, "TRUNCATE crm_events"),
            ]
        if group is None:  # the trigger, for the owner that holds every privilege
            assert all("append-only" in w for w in why), why
        else:
            assert all("permission denied for table crm_events" in w for w in why), why
    with inst.connect() as conn:
        assert conn.execute("SELECT count(*), sum(hashtext(encode(state, 'hex'))) "
                            "FROM crm_events").fetchone() == stored  # fmt: skip


def test_a_key_is_read_only_through_the_function_which_logs_the_read(inst: Installation) -> None:
    for group in GROUPS:
        with inst.connect(group) as conn:
            refused(conn, "SELECT key_material FROM crm_customer_keys")
            refused(conn, "SELECT * FROM crm_customer_keys")
    with inst.connect("staff") as conn:
        material = conn.execute("SELECT crm_customer_key(%s, 'call back')", (inst.c1,)).fetchone()
        assert material is not None and str(material[0]).startswith("w1:")  # wrapped
        refused(conn, "SELECT * FROM crm_key_reads")
        refused(
            conn, "INSERT INTO crm_key_reads (login, customer_id, action) VALUES ('x', 'y', 'z')"
        )
    with inst.connect("analyst") as conn:
        refused(conn, "SELECT crm_customer_key(%s, NULL)", inst.c1)
    with inst.connect() as conn:
        rows = conn.execute(
            "SELECT login, action, purpose, at > now() - interval '1 minute' FROM crm_key_reads "
            "WHERE customer_id = %s AND purpose = 'call back'",
            (inst.c1,),
        ).fetchall()
        assert rows == [(inst.logins["staff"], "read", "call back", True)]
        refused(conn, "DELETE FROM crm_key_reads")  # append-only too


def test_only_a_privacy_officer_or_an_admin_erases(inst: Installation) -> None:
    for group in ("staff", "analyst", "auditor"):
        with inst.connect(group) as conn:
            refused(conn, "SELECT crm_erase_customer_keys(%s, 'x')", [inst.c2])
    # nor records the erasure event itself, whatever principal its own code claims to be
    with inst.app("staff") as crm:
        crm.principal = Principal(name="pg:someone", roles=frozenset({Role.ADMIN}))
        crm.unit.principal = crm.principal
        with pytest.raises(Exception, match="may not record an erasure"):
            crm.erase_personal_data(customer="C-2", requested_by="nobody asked")
        assert not crm.store.load(uuid.UUID(inst.c2)).erased  # type: ignore[union-attr]
    with inst.app("privacy_officer") as crm:  # the event, then the key through the function
        crm.erase_personal_data(customer="C-2", requested_by="dsar-7")
        assert crm.get_customer("C-2").erased
    with inst.connect() as conn:
        key = conn.execute(
            "SELECT key_material, erased_at IS NOT NULL FROM crm_customer_keys "
            "WHERE customer_id = %s",
            (inst.c2,),
        ).fetchone()
        assert key == (None, True)
        erasers = conn.execute(
            "SELECT login FROM crm_key_reads WHERE customer_id = %s AND action = 'erase'",
            (inst.c2,),
        ).fetchall()
        assert erasers == [(inst.logins["privacy_officer"],)]
        assert conn.execute(
            "SELECT count(*) FROM rm_customers_tag_facts_g1 WHERE customer_id = %s", (inst.c2,)
        ).fetchone() == (0,)
        # The rewrite of the freed bytes is the owner's (crm-es maintain finishes it).
        pending = conn.execute(
            "SELECT value FROM crm_settings WHERE name = 'personal_data_wipe_pending'"
        ).fetchone()
        assert pending is not None
        assert json.loads(pending[0]) == ["crm_customer_keys", "rm_customers_tag_facts_g1"]


def test_an_analyst_reads_read_models_and_nothing_else(inst: Installation) -> None:
    with inst.connect() as conn:  # a generation the projections create after roles init
        conn.execute("CREATE TABLE rm_later_facts_g1 (customer_id text, n bigint)")
    with inst.connect("analyst") as conn:
        assert conn.execute("SELECT count(*) FROM rm_customers_profile_g1").fetchone()
        assert conn.execute("SELECT count(*) FROM rm_later_facts_g1").fetchone() == (0,)
        for table in ("crm_events", "crm_snapshots", "crm_commands", "crm_access_log"):
            refused(conn, f"SELECT count(*) FROM {table}")
        refused(conn, "SELECT customer_id FROM crm_customer_keys")
        refused(conn, "INSERT INTO rm_later_facts_g1 VALUES ('x', 1)")
        refused(conn, "SELECT tag FROM rm_customers_tag_facts_g1")  # personal: tags
        refused(conn, "SELECT * FROM rm_care_birthday_facts_g1")  # personal: birthdays
    with CRM(inst.url) as crm:  # a generation rebuilt after roles init is withheld too
        ProjectionEngine(crm, read_models()).rebuild("customers")
    with inst.connect("analyst") as conn:
        assert conn.execute("SELECT count(*) FROM rm_customers_profile_g2").fetchone()
        refused(conn, "SELECT tag FROM rm_customers_tag_facts_g2")
    with inst.connect("staff") as conn:  # the staff's agenda reads them
        assert conn.execute("SELECT count(*) FROM rm_customers_tag_facts_g2").fetchone()
    # ... and the app gives it the reports, from the read models as they stand
    with inst.app("analyst") as crm, Reports(crm) as reports:
        assert sum(reports.segments().lifecycle_sizes.values()) == 2
        assert reports.pipeline().by_stage  # the pipeline as known at T: the settings' history
        # the plan is read from the event store, which an analyst may not read: said plainly
        with pytest.raises(PermissionDenied, match="may not read the plan"):
            reports.goals()
        with pytest.raises(PermissionDenied):
            crm.view("C-1")


def test_the_session_role_is_the_principal(inst: Installation) -> None:
    def principal(group: str | None) -> Any:
        return principal_for_session(
            parse_store_url(inst.url if group is None else inst.url_of(group))
        )

    staff = principal("staff")
    assert staff.name == f"pg:{inst.logins['staff']}" and staff.roles == {Role.STAFF}
    assert staff.owner_id == f"staff:{inst.logins['staff']}"
    assert principal("analyst").roles == {Role.ANALYST}
    assert principal("privacy_officer").roles == {Role.PRIVACY_OFFICER}
    assert principal(None).roles == {Role.ADMIN}  # the owner, with no group


def test_a_staff_login_works_through_the_app_within_its_customers(inst: Installation) -> None:
    with inst.app("staff") as crm:
        assert crm.view("C-1")["profile"]["name"] == "王芳"  # the key through the function
        crm.update_profile(customer="C-1", email="wang@example.cn")
        crm.register_customer(external_ref="C-9", name="张伟")  # a key created, events inserted
        assert crm.view("C-9")["profile"]["name"] == "张伟"
        with pytest.raises(PermissionDenied):
            crm.view("C-2")
        # the read models now lag; its reports read them as they stand, without catching up
        with Reports(crm) as reports:
            assert sum(o.customers for o in reports.kpi().owners) == 2  # as caught up before
            assert len(reports.segments().customers) == 2
    with inst.connect() as conn:
        actors = conn.execute("SELECT count(*) FROM crm_key_reads WHERE login = %s",
                              (inst.logins["staff"],)).fetchone()  # fmt: skip
        assert actors is not None and actors[0] >= 2


def test_a_bulk_save_by_a_writing_login_takes_the_lock_through_the_owner_function(
    inst: Installation,
) -> None:
    # 250 events in one chunk: the bulk protocol (COPY, in the writer process), whose table
    # lock a role without UPDATE may take only through crm_events_lock().
    count = "SELECT count(*) FROM crm_events"
    with inst.connect() as conn:
        before = conn.execute(count).fetchone()
    commands = [cmd.RegisterCustomer(external_ref=f"B-{n}", name=f"客户{n}") for n in range(250)]
    with inst.app("admin") as crm:
        results = list(crm.execute_many(commands))
        assert all(not isinstance(r, Exception) for r in results), results[:3]
        assert crm.view("B-249")["profile"]["name"] == "客户249"
    with inst.connect() as conn:
        assert before is not None and conn.execute(count).fetchone() == (before[0] + 250,)


def test_the_command_line_runs_as_the_session_role(inst: Installation) -> None:
    def crm_es(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crm_es.cli", "--db", url, *args],
                              input=stdin, capture_output=True, text=True, check=False)  # fmt: skip

    own = crm_es(inst.url_of("staff"), "show", "C-1")
    assert own.returncode == 0 and "王芳" in own.stdout, own.stderr
    other = crm_es(inst.url_of("staff"), "show", "C-2")
    assert other.returncode == 1 and f"pg:{inst.logins['staff']}" in other.stderr
    assert "Traceback" not in other.stderr
    line = '{"type": "change_tags", "customer": "C-1", "add": ["vip"]}\n'
    done = crm_es(inst.url_of("staff"), "exec", "-", stdin=line)
    assert done.returncode == 0 and '"ok":true' in done.stdout.replace(" ", ""), done
    history = crm_es(inst.url_of("staff"), "history", "C-1")
    assert history.returncode == 0 and f"pg:{inst.logins['staff']}" in history.stdout


def test_an_event_under_a_name_its_login_does_not_hold_is_named_by_verify(
    inst: Installation,
) -> None:
    staff = inst.logins["staff"]
    with CRM(inst.url) as crm:  # the owner may record as anyone: an embedded admin
        crm.register_customer(external_ref="C-F", name="赵六", owner=f"staff:{staff}")
    with inst.app("staff") as crm:
        crm.change_tags(customer="C-F", add=["honest"])  # recorded as pg:<its login>
        # Its own code claims another name: the service believes it, the database does not.
        crm.principal = Principal(name="pg:the-boss", roles=frozenset({Role.STAFF}),
                                  owner=f"staff:{staff}")  # fmt: skip
        crm.unit.principal = crm.principal
        crm.change_tags(customer="C-F", add=["forged"])
    with inst.connect() as conn:  # the database stamped the login, whatever the insert said
        logins = conn.execute(
            "SELECT originator_version, recorded_by FROM crm_events WHERE originator_id = %s "
            "ORDER BY originator_version",
            (uuid.UUID(str(customer_id_for_ref("C-F"))),),
        ).fetchall()
        assert [login for _, login in logins] == ["postgres"] * (len(logins) - 2) + [staff] * 2
    forged_version = logins[-1][0]
    with CRM(inst.url) as crm:
        report = verify(crm, "C-F")
    assert not report.ok  # (an earlier test's erasure may leave a store-wide wipe pending)
    assert [(p.version, p.problem) for p in report.problems if p.customer_id] == [
        (forged_version, f"recorded by the database login {staff!r} under the actor 'pg:the-boss': "
            f"a login records as pg:{staff} (actor forged)")
    ]  # fmt: skip
    # the command line says so too, naming the customer
    done = subprocess.run([sys.executable, "-m", "crm_es.cli", "--db", inst.url, "audit", "verify",
                           "C-F"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode != 0 and "actor forged" in done.stdout + done.stderr, done


def test_an_auditor_login_verifies_without_reading_key_material(inst: Installation) -> None:
    with inst.app("auditor") as crm:
        report = verify(crm, "C-1")
    assert [p for p in report.problems if p.customer_id] == []
    assert report.events >= 1
    with inst.connect() as conn:  # its personal values opened through the logged function
        reads = conn.execute("SELECT count(*) FROM crm_key_reads WHERE login = %s",
                             (inst.logins["auditor"],)).fetchone()  # fmt: skip
        assert reads is not None and reads[0] >= 1


def test_roles_init_on_sqlite_is_a_clear_error(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    CRM(url).close()
    with pytest.raises(CrmError, match="needs a PostgreSQL store"):
        init_roles(parse_store_url(url))
    done = subprocess.run([sys.executable, "-m", "crm_es.cli", "--db", url, "roles", "init"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1 and "Error: roles init needs a PostgreSQL store" in done.stderr
