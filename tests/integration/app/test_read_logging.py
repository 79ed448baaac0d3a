"""Every read of personal data through the service is in the access log — who, which customer,
which fields, why — and nothing else is: a masked read, a refused one and a command write none."""

from __future__ import annotations

import json

import pytest

from crm_es import CRM
from crm_es.audit.export import export_history
from crm_es.domain.errors import PermissionDenied
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.principals import Principal, Role
from tests.helpers.cli import run

STAFF = Principal(name="user:li", roles=frozenset({Role.STAFF}), owner="staff:li")
AUDITOR = Principal(name="user:audit", roles=frozenset({Role.AUDITOR}))


def _customers(url: str) -> None:
    with CRM(url) as crm:
        crm.register_customer(external_ref="C-LI", name="王芳", owner="staff:li")
        crm.register_customer(external_ref="C-WANG", name="张伟", owner="staff:wang")


def test_reads_in_clear_are_logged_with_fields_and_purpose(store_url: str) -> None:
    _customers(store_url)
    li = customer_id_for_ref("C-LI")
    with CRM(store_url, principal=STAFF) as crm:
        assert crm.store.access_log.entries() == []  # registering read nothing
        crm.view("C-LI", purpose="ticket 7")
        list(crm.history("C-LI"))
        crm.get_customer_as_of("C-LI", as_of="2099-01-01")
        with pytest.raises(PermissionDenied):
            crm.view("C-WANG")
        entries = crm.store.access_log.entries()
    assert [(e.principal, e.customer_id, e.action) for e in entries] == [
        ("user:li", str(li), "show"),
        ("user:li", str(li), "history"),
        ("user:li", str(li), "show"),
    ]
    assert entries[0].purpose == "ticket 7" and "name" in entries[0].fields
    assert "reason" in entries[1].fields  # a history shows every declared personal path


def test_masked_reads_are_not_logged_and_exports_are(store_url: str) -> None:
    _customers(store_url)
    with CRM(store_url, principal=AUDITOR) as crm:
        assert crm.view("C-LI")["profile"]["name"] == "[masked]"
        assert crm.store.access_log.entries() == []
    with CRM(store_url) as crm:
        export_history(crm, lambda _: None)
        exported = {e.customer_id for e in crm.store.access_log.entries(by="api:python")}
    assert exported == {str(customer_id_for_ref(r)) for r in ("C-LI", "C-WANG")}


def test_names_in_a_report_table_are_a_logged_read(sqlite_url: str) -> None:
    _customers(sqlite_url)
    code, out, _ = run(sqlite_url, "report", "segments", "--format", "table")
    assert code == 0 and "王芳" in out
    with CRM(sqlite_url) as crm:
        entries = crm.store.access_log.entries(by="cli")
    assert {e.customer_id for e in entries} == {
        str(customer_id_for_ref(r)) for r in ("C-LI", "C-WANG")
    }  # one row per customer whose name the table showed
    assert {(e.action, tuple(e.fields), e.purpose) for e in entries} == {
        ("list", ("name",), "report table")
    }


def test_an_export_cut_short_has_logged_what_it_handed_out(store_url: str) -> None:
    _customers(store_url)
    written: list[bytes] = []

    def write(line: bytes) -> None:
        if len(written) > 3:  # the reader went away after the first customer
            raise BrokenPipeError
        written.append(line)

    with CRM(store_url) as crm:
        with pytest.raises(BrokenPipeError):
            export_history(crm, write)
        logged = [e.customer_id for e in crm.store.access_log.entries() if e.action == "export"]
    handed_out = {
        str(line["customer_id"]) for line in map(json.loads, written) if "customer_id" in line
    }
    assert handed_out and handed_out <= set(logged)  # logged before it was written
