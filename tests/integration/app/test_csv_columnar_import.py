"""The columnar CSV front end and the row-by-row command path read a file the same way: files of
bad rows of every kind (and good ones of every shape) imported both ways into two fresh stores
give byte-identical reports (counts, lines, error messages) and the same stored events, on
SQLite and on PostgreSQL; blocks of three rows put every boundary case across blocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from crm_es import CRM
from crm_es.app import csv_columns, csv_commands
from crm_es.app.importer import CsvImportReport, import_csv
from crm_es.domain import commands as cmd
from tests.helpers.postgres import drop_schema, new_postgres_url, require_postgres

ZONE = "Asia/Shanghai"
PURCHASES = "customer_ref,occurred_at,amount,currency,order_id,channel,product_category,staff\n"
CUSTOMERS = (
    "external_ref,name,email,phone,birthday,kind,category,region,industry,company_size,"
    "income_band,source_channel,owner,tags,occurred_at\n"
)


# Both paths read "now" (a bare date of today, the future bound, its error message) from this.
NOW = datetime.now(UTC).replace(microsecond=123456)


def _today(days: int = 0) -> str:
    return (NOW.astimezone(ZoneInfo(ZONE)) + timedelta(days=days)).date().isoformat()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_commands, "utc_now", lambda: NOW)
    monkeypatch.setattr(csv_columns, "utc_now", lambda: NOW)


def purchase_rows() -> list[str]:
    """Good rows of every shape, then bad rows of every kind, in one file."""
    long_ref, cat201 = "L" * 100, "x" * 201
    good = [
        "C-1,2024-01-05T10:00:00+08:00,129.90,CNY,O-1,phone,家电,staff:li",
        "C-1,2024-01-06 10:00:00,5000.00,CNY,,online,,",  # naive: the store's zone; derived id
        "C-1,2024-01-06 10:00:00,5000.00,CNY,,online,,",  # identical: the second of its content
        " C-2 , 2024-02-01 ,0,CNY,,,,",  # bare date, zero amount, cells padded with spaces
        "C-2,20240202,100,JPY,O-2,,,",  # compact bare date, a currency without decimals
        "C-2,2024-02-03T00:00:00Z,1.500,CNY,O-3,,,",  # Z; more zeros than CNY's decimals
        "C-3,2024-02-04T00:00:00Z,100.0,JPY,O-4,store,Cafe\u0301,",  # NFC of a category
        "C-3,2024-02-05T00:00:00+00:00,1.234,KWD,O-e\u0301,,,",  # NFC of an order id
        f"C-4,{_today()},10,CNY,O-today,,,",  # a bare date of today means now
        "C-4,2024-03-01,10.00,USD,O-1,,,",
        "C-3,1900-01-01T00:00:00Z,1,CNY,O-1900,,,",
        '"C-3","2024-03-02T10:00:00+08:00","1,5",CNY,O-q,,,',  # quoted cells (and a bad amount)
        'C-3,2024-03-03,"2",CNY,O-q2,,"a ""quoted"" category",',
        "C-1,2024-01-05T10:00:00+08:00,129.90,CNY,O-1,phone,家电,staff:li",  # a repeat: unchanged
        "C-1,2024-01-07T10:00:00+08:00,1.00,CNY,O-1,,,",  # same order id, other content
        "C-404,2024-01-05,1,CNY,,,,",  # an unknown customer
        "C-1,2024-01-05",  # a short row: blank required cells
        "",  # a blank line
    ]
    bad_cells = [
        ",2024-01-05,1,CNY,,,,",
        "C-1,,1,CNY,,,,",
        "C-1,2024-01-05,,CNY,,,,",
        "C-1,2024-01-05,1,,,,,",
        "C-1\u200b,2024-01-05,1,CNY,,,,",
        "R" * 129 + ",2024-01-05,1,CNY,,,,",
        "C\x01,2024-01-05,1,CNY,,,,",
        "C-1,yesterday,1,CNY,,,,",
        "C-1,2024-13-01,1,CNY,,,,",
        "C-1,2024-02-30,1,CNY,,,,",
        "C-1,2999-01-01T00:00:00+00:00,1,CNY,,,,",
        f"C-1,{_today(2)},1,CNY,,,,",
        "C-1,1899-06-01T00:00:00+00:00,1,CNY,,,,",
        "C-1,0001-01-01T00:00:00+01:00,1,CNY,,,,",
        "C-1,2024-W01-1,1,CNY,,,,",
        "C-1,2024-01-05T10:00:00,1,CNY,,,,",
        "C-1,2024-01-05Z,1,CNY,,,,",
        "C-1,20240105T1000,1,CNY,,,,",
        "C-1,2024-01-05,-1,CNY,,,,",
        "C-1,2024-01-05,1e3,CNY,,,,",
        "C-1,2024-01-05,abc,CNY,,,,",
        "C-1,2024-01-05,１２３,CNY,,,,",
        "C-1,2024-01-05,1.234,CNY,,,,",
        "C-1,2024-01-05,100.5,JPY,,,,",
        "C-1,2024-01-05,10000000000000000,CNY,,,,",
        "C-1,2024-01-05,01,CNY,,,,",
        "C-1,2024-01-05,1.,CNY,,,,",
        "C-1,2024-01-05,.5,CNY,,,,",
        "C-1,2024-01-05," + "1" * 41 + ",CNY,,,,",
        "C-1,2024-01-05,1,cny,,,,",
        "C-1,2024-01-05,1,XXX,,,,",
        "C-1,2024-01-05,1,CN,,,,",
        "C-1,2024-01-05,1,CNY,O\x01,,,",
        "C-1,2024-01-05,1,CNY," + "O" * 129 + ",,,",
        f"{long_ref},2024-01-05,1,CNY," + "P" * 20 + ",,,",  # its command id is too long
        f"{long_ref},2024-01-05,1,CNY,,,,",  # so is a derived one
        f"{long_ref},2024-01-05,1,CNY,,,,",
        "C-1,2024-01-05,1,CNY,,fax,,",
        f"C-1,2024-01-05,1,CNY,,,{cat201},",
        "C-1,2024-01-05,1,CNY,,,a\x07b,",
        "C-1,2024-01-05,1,CNY,,,,s\u200b",
    ]
    malformed = [
        'C-1,"2024-01-05,1,CNY,,,,',  # unterminated: the next lines are read as rows
        "C-2,2024-01-08,2,CNY,O-after,,,",
        "C-1,2024-01-05,1,CNY,O-9,phone,x,s,extra",
        'C-1,"2024-01-05"x,1,CNY,,,,',
        "C-1,2024-01-05,1,CNY,O-\x00,,,",
    ]
    return good + bad_cells + malformed + good[:3]  # the same contents again, counted on


def customer_rows() -> list[str]:
    return [
        "K-1,王芳,wf@example.com,+86 138 0000 0000,1990-02-01,individual,signed,华东,retail,"
        "1-10,high,wechat,staff:li,vip;north,2024-01-01",
        "K-2,Jose\u0301,,,,company,partner,,,,,,,,",
        "K-3,,,,,,,,,,,,,;; ;,",  # tags of blanks only
        "K-4,,,,,,,,,,,,,,2024-01-01T08:00:00+08:00",
        "K-1,Again,,,,,,,,,,,,,",  # already registered: unchanged
        ",名字,,,,,,,,,,,,,",
        "K-5,,,,1990-02-30,,,,,,,,,,",
        "K-6,,,,19900201,,,,,,,,,,",
        "K-7,,,,,robot,,,,,,,,,",
        "K-8,,,,,,vip,,,,,,,,",
        "K-9," + "n" * 201 + ",,,,,,,,,,,,,",
        "K-10,a\x07b,,,,,,,,,,,,,",
        "K-11,,,,,,,,,,,fax,,,",
        "K-12,,,,,,,,,,,,bad\u200bowner,,",
        "K-13,,,,,,,,,,,,,bad tag\u200b,",
        "K-14,,,,,,,,,,,,," + ";".join(f"t{i}" for i in range(51)) + ",",
        "K-15,,,,,,,,,,,,,,yesterday",
        "K-16,,,,,,,,,,,,,,0001-01-01T00:00:00+01:00",
        "X" * 120 + ",,,,,,,,,,,,,,",  # its command id is too long
        "K\u200b,,,,,,,,,,,,,,",
        f"K-17,,,,,,,,,,,,,,{_today()}",
        f"K-18,,,,,,,,,,,,,,{_today(3)}",
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rows.db'}", f"sqlite:///{tmp_path / 'columns.db'}"
        return
    require_postgres()
    (a, first), (b, second) = new_postgres_url(), new_postgres_url()
    try:
        yield a, b
    finally:
        drop_schema(first)
        drop_schema(second)


def _import(url: str, path: Path, kind: str, columnar: bool, **options: Any) -> CsvImportReport:
    with CRM(url, clock=lambda: NOW) as crm:
        crm.store.set_timezone(ZONE)
        if kind == "purchases":
            for ref in ("C-1", "C-2", "C-3", "C-4"):
                crm.register_customer(external_ref=ref)
        return import_csv(crm, path, kind, columnar=columnar, block_rows=3, **options)


def _report(report: CsvImportReport) -> bytes:
    return msgspec.json.encode(msgspec.structs.replace(report, seconds=0, rows_per_second=0))


def _events(url: str) -> list[dict[str, Any]]:
    """Every stored event, as decoded (the clock stood still: recorded times are equal too)."""
    with CRM(url) as crm:
        notifications = crm.recorder.select_notifications(start=1, limit=100_000)
        ids = sorted({str(n.originator_id) for n in notifications})
        out = []
        for customer in ids:
            for event in crm.history(customer):
                out.append(msgspec.to_builtins(event))
        return out


def _both(two_stores: tuple[str, str], path: Path, kind: str, **options: Any) -> None:
    rows_url, columns_url = two_stores
    by_rows = _import(rows_url, path, kind, False, **options)
    by_columns = _import(columns_url, path, kind, True, **options)
    assert _report(by_columns) == _report(by_rows)
    assert by_rows.rejected > 10 and by_rows.stored > 3 and by_rows.errors
    assert _events(columns_url) == _events(rows_url)


def test_purchase_files_read_the_same_by_columns_and_by_rows(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "purchases.csv"
    path.write_text(PURCHASES + "\n".join(purchase_rows()) + "\n", encoding="utf-8")
    _both(two_stores, path, "purchases")


def test_purchase_files_with_register_missing_read_the_same(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "purchases.csv"
    extra = [
        "Jose\u0301,2024-01-05,1,CNY,,,,",  # a new customer whose ref is not in NFC
        "N-1,2024-01-05,1,CNY,,,,",
        "N-1,2024-01-06,2,CNY,,,,",  # registered by the row before
        "Y" * 120 + ",2024-01-05,1,CNY,O-1,,,",  # its registration's command id is too long
        # Refused before anything runs: their customers are not registered either.
        "N-2,2024-01-05,1.234,CNY,,,,",
        "N-3,2999-01-01T00:00:00Z,1,CNY,,,,",
        f"N-4,{_today(2)},1,CNY,,,,",
        "N-5,2024-01-05,1,CNY,,fax,,",
    ]
    path.write_text(PURCHASES + "\n".join(purchase_rows() + extra) + "\n", encoding="utf-8")
    _both(two_stores, path, "purchases", register_missing=True)


def test_customer_files_read_the_same_by_columns_and_by_rows(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS + "\n".join(customer_rows()) + "\n", encoding="utf-8")
    _both(two_stores, path, "customers")


def test_a_columnar_import_stores_personal_data_encrypted_and_a_rerun_adds_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS + "\n".join(customer_rows()[:4]) + "\n", encoding="utf-8")
    with CRM(sqlite_url) as crm:
        first = import_csv(crm, path, "customers")
        again = import_csv(crm, path, "customers")
        assert (first.stored, again.stored, again.unchanged) == (4, 0, 4)
        assert crm.get_customer("K-1").name == "王芳"
        assert crm.get_customer("K-2").name == "Jos\u00e9"  # in NFC
    raw = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert "王芳".encode() not in raw and b"wf@example.com" not in raw


def test_a_row_of_the_columnar_path_is_the_command_the_api_builds(tmp_path: Path) -> None:
    """What a clean row becomes, field by field, is what ``record_purchase`` is given."""
    path = tmp_path / "purchases.csv"
    path.write_text(PURCHASES + "C-1,2024-01-05T10:00:00+08:00,129.90,CNY,O-1,phone,家电,li\n")
    with CRM(f"sqlite:///{tmp_path / 'crm.db'}") as crm:
        crm.register_customer(external_ref="C-1")
        report = import_csv(crm, path, "purchases")
        assert report.stored == 1
        event = list(crm.history("C-1"))[-1]
    expected = cmd.command_from_fields(
        cmd.RecordPurchase,
        {
            "customer": "C-1",
            "order_id": "O-1",
            "amount": "129.90",
            "currency": "CNY",
            "channel": "phone",
            "product_category": "家电",
            "staff": "li",
            "occurred_at": datetime(2024, 1, 5, 2, tzinfo=UTC),
            "command_id": "csv:purchase:C-1:O-1",
        },
    )
    assert isinstance(expected, cmd.RecordPurchase)
    assert event.command_id == expected.command_id and event.occurred_at == expected.occurred_at
    assert (event.order_id, event.staff, event.product_category) == ("O-1", "li", "家电")
