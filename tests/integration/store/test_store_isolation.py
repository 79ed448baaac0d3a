"""One installation per URL: schema names are taken as written and quoted, connection strings
are built by the driver, and a password is never shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from crm_es import CRM
from crm_es.domain.values import ERASED
from crm_es.reports import Reports
from crm_es.store.database import Database
from crm_es.store.url import StoreUrlError, parse_store_url
from tests.helpers.cli import lines, run
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres


def with_schema(url: str, schema: str) -> str:
    return re.sub(r"schema=[^&]*", f"schema={schema}", url)


@pytest.fixture
def two_tenants() -> Iterator[tuple[str, str]]:
    """The same schema name in two cases: two installations."""
    require_postgres()
    url, schema = new_postgres_url()
    upper, lower = f"T{schema}", f"t{schema}"
    try:
        yield with_schema(url, upper), with_schema(url, lower)
    finally:
        drop_schema(upper)
        drop_schema(lower)


def test_schema_names_differing_only_in_case_are_two_installations(
    two_tenants: tuple[str, str],
) -> None:
    upper, lower = two_tenants
    with CRM(upper) as a, CRM(lower) as b:
        a.register_customer(external_ref="C-1", name="王芳", tags=["vip"])
        b.register_customer(external_ref="C-1", name="李雷")
        b.erase_personal_data(customer="C-1", requested_by="customer")
        assert a.get_customer("C-1").name == "王芳"  # the other tenant's erasure did not reach it
        assert b.get_customer("C-1").name is None
        with Reports(a) as ra, Reports(b) as rb:
            assert len(ra.segments().customers) == len(rb.segments().customers) == 1
    for url, name in ((upper, "王芳"), (lower, ERASED)):
        shown = lines(run(url, "show", "C-1")[1])[0]
        assert shown["profile"]["name"] == name  # type: ignore[index]


@pytest.mark.parametrize("schema", ["pg_catalog", "PG_toast", "information_schema", "a-b", ""])
def test_postgresql_schemas_and_odd_names_are_refused(schema: str) -> None:
    with pytest.raises(StoreUrlError):
        parse_store_url(f"postgresql://postgres@127.0.0.1/test?schema={schema}")


def test_a_quote_in_the_password_cannot_add_connection_parameters(postgres_url: str) -> None:
    """Trust authentication lets any password in: where the connection goes shows the
    quoting. A hand-built string would have connected to the database named in the password."""
    password = quote("x' dbname='postgres")
    url = postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    db = Database(parse_store_url(url))
    try:
        with db.reading() as tx:
            assert tx.query("SELECT current_database()")[0][0] == "test"
    finally:
        db.close()


def test_init_never_prints_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    code, out, err = run(url, "init")
    assert code == 0, err
    assert "s3cret-pw" not in out + err and lines(out)[0]["url"].count("***") == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "password", ["S3CR#ETPW", "S3CR?ETPW", "S3/CRETPW", "S3CR@ETPW", "S3CR:ETPW", "S3CRETPW:"]
)
@pytest.mark.parametrize("port", ["5432", "abc", ""])
def test_a_password_with_unescaped_url_characters_is_never_shown(password: str, port: str) -> None:
    """URL parsers end the user part at ``#``, ``/`` or ``?``: the password is then read as a
    host, port or path and its pieces quoted in their errors."""
    host = f"127.0.0.1:{port}" if port else "127.0.0.1"
    url = f"postgresql://postgres:{password}@{host}/nowhere_db"
    code, out, err = run(url, "init")
    assert code == 1 and err.startswith("Error:"), err
    for piece in ("S3CR", "ETPW", password):
        assert piece not in out + err
