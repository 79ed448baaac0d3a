"""Erasure is one promise on every path in: the Python API, ``crm-es exec``, ``execute_many``
(in this process and through the bulk writer process), the CSV import and ``audit import``.

The same scenario runs through each: a customer with personal data in every field that can hold
it is erased; afterwards the key is gone, the store verifies, the history and the read models
hold no personal value, no command can store a new one, and no personal value is left in the
store's bytes on disk (SQLite: the database and its write-ahead log; PostgreSQL: every page of
every table and index of the schema, dead row versions included, and a dump of it).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from crm_es import CRM
from crm_es.app.importer import import_csv
from crm_es.audit.export import export_history
from crm_es.audit.history import event_record
from crm_es.audit.importer import import_history
from crm_es.audit.verify import verify
from crm_es.domain import commands as cmd
from crm_es.domain.contact_keys import contact_hash
from crm_es.domain.errors import CustomerErased
from crm_es.domain.ids import customer_id_for_ref
from crm_es.domain.values import ERASED
from crm_es.reports import Reports
from tests.helpers.cli import run
from tests.helpers.personal_data import (
    BIRTHDAY,
    EMAIL,
    FREE_TEXT,
    NAME,
    PHONE,
    fill,
    leaks,
    settle_wipe,
)
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres
from tests.helpers.raw_bytes import store_bytes

ERASE = cmd.ErasePersonalData(customer="C-1", requested_by="customer", legal_basis="PIPL 47")


def project(crm: CRM) -> None:
    """The read models catch up before the erasure: it must delete what they hold (the contact
    index's hashes, birthdays, tags), not only keep them from being written."""
    with Reports(crm) as reports:
        assert reports.find_customers(phone=PHONE).total == 1


def by_api(url: str, _: Path) -> str:
    with CRM(url, snapshot_interval=4) as crm:
        fill(crm)
        project(crm)
        crm.execute(ERASE)
    return url


def by_exec(url: str, _: Path) -> str:
    with CRM(url, snapshot_interval=4) as crm:
        fill(crm)
        project(crm)
    code, _out, err = run(url, "exec", "-", input=msgspec.json.encode(ERASE).decode() + "\n")
    assert code == 0, err
    return url


def by_execute_many(url: str, _: Path) -> str:
    with CRM(url, snapshot_interval=4) as crm:
        fill(crm)
        project(crm)
        [outcome] = crm.execute_many([ERASE])
        assert not isinstance(outcome, Exception), outcome
    return url


def by_bulk_writer(url: str, _: Path) -> str:
    """A chunk large enough to be stored by the writer child process."""
    with CRM(url, snapshot_interval=4) as crm:
        fill(crm)
        crm.register_customer(external_ref="OTHER")
        project(crm)
        grants = [cmd.GrantPoints(customer="OTHER", points=1) for _ in range(300)]
        outcomes = list(crm.execute_many([*grants, ERASE], chunk_size=1000))
        assert not any(isinstance(o, Exception) for o in outcomes)
    return url


def by_csv_import(url: str, tmp_path: Path) -> str:
    """Personal data arrives from a CSV file; after the erasure the file is imported again."""
    csv = tmp_path / "customers.csv"
    csv.write_text(
        f"external_ref,name,email,phone,birthday,tags\nC-1,{NAME},{EMAIL},{PHONE},{BIRTHDAY},vip\n",
        encoding="utf-8",
    )
    with CRM(url, snapshot_interval=4) as crm:
        assert import_csv(crm, csv, "customers").stored == 1
        fill(crm, registered=True)
        project(crm)
        crm.execute(ERASE)
        again = import_csv(crm, csv, "customers")
        assert (again.stored, again.rejected) == (0, 0)
    return url


def by_audit_import(url: str, tmp_path: Path) -> str:
    """The history comes into this store from another one's export, and is erased here."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    export = tmp_path / "export.jsonl"
    with CRM(source, snapshot_interval=4) as crm, export.open("wb") as f:
        fill(crm)
        export_history(crm, f.write)
    with CRM(url, snapshot_interval=4) as crm:
        import_history(crm, export)
        project(crm)
        crm.execute(ERASE)
    (tmp_path / "source.db").unlink()  # the copy elsewhere is the export's own caveat
    for leftover in tmp_path.glob("source.db*"):
        leftover.unlink()
    export.unlink()
    return url


PATHS: dict[str, Callable[[str, Path], str]] = {
    "api": by_api,
    "exec": by_exec,
    "execute_many": by_execute_many,
    "bulk_writer": by_bulk_writer,
    "csv_import": by_csv_import,
    "audit_import": by_audit_import,
}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    require_postgres()
    url, schema = new_postgres_url()
    try:
        yield url
    finally:
        drop_schema(schema)


@pytest.mark.parametrize("path", list(PATHS))
def test_an_erasure_leaves_no_personal_value_anywhere(
    path: str, fresh_url: str, tmp_path: Path
) -> None:
    url = PATHS[path](fresh_url, tmp_path)
    cid = customer_id_for_ref("C-1")
    with CRM(url) as crm:
        assert crm.store.personal_data.key(cid) is None and crm.store.personal_data.is_erased(cid)
        settle_wipe(crm)
        report = verify(crm)
        assert report.ok, report.problems
        history = json.dumps([event_record(e) for e in crm.history("C-1")], ensure_ascii=False)
        assert leaks(history.encode()) == [] and ERASED in history
        state = crm.get_customer("C-1")
        assert (state.name, state.tags, state.churn_reason) == (None, [], None)
        with pytest.raises(CustomerErased):
            crm.update_profile(customer="C-1", name="someone")
        with Reports(crm) as reports:  # read models built after the erasure
            reports.segments()
            reports.agenda()
        export = io.BytesIO()
        export_history(crm, export.write, customer="C-1")
        assert leaks(export.getvalue()) == []
    # The HTML page reads the same read models on every path, and takes seconds: once.
    assert leaks(outputs(url, tmp_path, html=path == "api")) == []
    raw = store_bytes(url)
    assert leaks(raw) == []
    assert [h for h in index_hashes(url) if h in raw] == []  # the contact index's too


def index_hashes(url: str) -> list[bytes]:
    """The contact index's keyed hashes of the customer's phone and email, as stored."""
    with CRM(url) as crm:
        key = crm.store.secrets.contact_index_key
    return [
        contact_hash(key, "phone", "13912345678").encode(),  # PHONE, normalised
        contact_hash(key, "email", EMAIL.lower()).encode(),
    ]


def outputs(url: str, tmp_path: Path, *, html: bool = True) -> bytes:
    """Everything a person reads about the customers: every report (Python and command line,
    the HTML page), the lists with contact details and the campaign export, show and history."""
    with CRM(url) as crm, Reports(crm) as reports:
        found = [
            msgspec.json.encode(report)
            for report in (
                reports.segments(), reports.churn(), reports.satisfaction(), reports.agenda(),
                reports.kpi(), reports.contacts(), reports.retention(), reports.drivers(),
                reports.value(), reports.pipeline(), reports.customer_list(),
                reports.campaign_export("spring"), reports.customer_summary(),
                reports.find_customers(phone=PHONE), reports.duplicate_customers(),
            )
        ]  # fmt: skip
    page = tmp_path / "page.html"
    commands = [
        *(("report", name, "--format", "csv") for name in REPORTS),
        ("report", "contacts", "--format", "table", "--section", "last_contact"),
        ("customers", "list", "--with-contact-details", "--format", "table"),
        ("customers", "export", "--campaign", "spring", "--with-contact-details", "--format", "csv"),
        ("customers", "summary", "--format", "json"),
        ("customers", "find", "--phone", PHONE, "--with-contact-details", "--format", "table"),
        ("customers", "find", "--email", EMAIL, "--with-contact-details", "--format", "json"),
        ("customers", "duplicates", "--with-contact-details", "--format", "csv"),
        ("show", "C-1", "--format", "json"),
        ("history", "C-1", "--format", "table"),
    ]  # fmt: skip
    if html:
        commands.append(("report", "html", "--out", str(page)))
    for args in commands:
        code, out, err = run(url, *args)
        assert code == 0, (args, err)
        found += [out.encode(), err.encode()]
    return b"\n".join([*found, page.read_bytes() if html else b""])


# The reports whose JSON the API's encoding above already is; their CSV is another rendering.
REPORTS = ("contacts", "retention", "drivers", "value", "pipeline")


def test_the_outputs_scanned_after_an_erasure_show_personal_data_before_it(
    fresh_url: str, tmp_path: Path
) -> None:
    """The scan of the outputs can fail: before the erasure, contact details, show and history
    hold the values it looks for."""
    with CRM(fresh_url) as crm:
        fill(crm)
    assert {NAME, PHONE, FREE_TEXT} <= set(leaks(outputs(fresh_url, tmp_path)))


def test_the_contact_index_hashes_scanned_after_an_erasure_are_in_the_bytes_before_it(
    fresh_url: str,
) -> None:
    """The scan of the hashes can fail: once the read models ran, the index holds them."""
    with CRM(fresh_url) as crm:
        fill(crm)
        with Reports(crm) as reports:
            assert [c.external_ref for c in reports.find_customers(email=EMAIL).customers] == [
                "C-1"
            ]
    raw = store_bytes(fresh_url)
    assert all(h in raw for h in index_hashes(fresh_url))


def test_personal_data_is_in_the_raw_bytes_before_the_erasure_only_as_ciphertext(
    fresh_url: str,
) -> None:
    """The scan above would see a clear value: here the same scan finds none before an erasure
    either (everything is encrypted), and finds a value that is stored in clear."""
    with CRM(fresh_url) as crm:
        fill(crm)
        crm.register_customer(external_ref="PLAIN", region=NAME)  # a region is not personal
    found = leaks(store_bytes(fresh_url))
    assert found == [NAME]
