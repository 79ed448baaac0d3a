"""``crm-es import customers|purchases``: idempotent, per-row errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crm_es import CRM
from crm_es.cli import main

CUSTOMERS = """external_ref,name,email,region,kind,owner,tags,birthday
C-1,王芳,wf@example.com,华东,individual,staff:li,vip;b2c,1990-05-01
C-2,Acme 公司,,华南,company,,,
C-3,Bad Kind,,,robot,,,
,No Ref,,,,,,
"""

PURCHASES = """customer_ref,occurred_at,amount,currency,order_id,channel
C-1,2026-01-05,129.90,CNY,,store
C-1,2026-01-05,129.90,CNY,,store
C-1,2026-02-01T10:00:00+08:00,5.5,CNY,O-9,online
C-2,2026-03-01,-1,CNY,,
C-2,yesterday,1,CNY,,
NEW-1,2026-03-02,10,CNY,,app
"""


def run(url: str, *args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(main, ["--db", url, *args])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_importing_customers_twice_adds_nothing_the_second_time(
    store_url: str, tmp_path: Path
) -> None:
    f = tmp_path / "customers.csv"
    f.write_text(CUSTOMERS, encoding="utf-8")
    code, report, err = run(store_url, "import", "customers", str(f))
    assert code == 1
    assert (report["rows"], report["stored"], report["unchanged"], report["rejected"]) == (
        4,
        2,
        0,
        2,
    )
    assert f"{f} line 4: Invalid enum value 'robot' - at `$.kind`" in err
    assert f"{f} line 5:" in err
    with CRM(store_url) as crm:
        head = crm.recorder.max_notification_id()
        c1 = crm.get_customer("C-1")
        assert (c1.name, c1.owner, c1.tags, c1.birthday) == (
            "王芳",
            "staff:li",
            ["b2c", "vip"],
            "1990-05-01",
        )
    code, report, _ = run(store_url, "import", "customers", str(f))
    assert (report["stored"], report["unchanged"], report["rejected"]) == (0, 2, 2)
    with CRM(store_url) as crm:
        assert crm.recorder.max_notification_id() == head


def test_importing_purchases_is_idempotent_and_reports_bad_rows(
    store_url: str, tmp_path: Path
) -> None:
    customers, purchases = tmp_path / "c.csv", tmp_path / "p.csv"
    customers.write_text(CUSTOMERS, encoding="utf-8")
    purchases.write_text(PURCHASES, encoding="utf-8")
    run(store_url, "import", "customers", str(customers))
    code, report, err = run(store_url, "import", "purchases", str(purchases))
    assert code == 1
    assert (report["stored"], report["unchanged"], report["rejected"]) == (3, 0, 3)
    assert "line 5: amount: must not be negative" in err
    assert "line 6: occurred_at: not an ISO date or date-time (got 'yesterday')" in err
    assert "line 7: customer 'NEW-1' not found (use --register-missing" in err
    with CRM(store_url) as crm:
        # Two identical rows without order_id are two purchases, kept apart by their position.
        assert crm.get_customer("C-1").paid == {"CNY": 12990 * 2 + 550}
    code, report, _ = run(store_url, "import", "purchases", str(purchases), "--register-missing")
    assert (report["stored"], report["unchanged"], report["rejected"]) == (1, 3, 2)
    with CRM(store_url) as crm:
        new = crm.get_customer("NEW-1")
        assert new.paid == {"CNY": 1000}
        assert new.registered_at.isoformat() == "2026-03-02T23:59:59.999999+00:00"
        head = crm.recorder.max_notification_id()
        assert crm.get_customer("C-2").orders == {}  # its bad rows stored nothing
    code, report, _ = run(store_url, "import", "purchases", str(purchases), "--register-missing")
    assert (report["stored"], report["unchanged"]) == (0, 4)
    with CRM(store_url) as crm:
        assert crm.recorder.max_notification_id() == head


def test_a_file_without_the_required_columns_is_a_clear_error(
    sqlite_url: str, tmp_path: Path
) -> None:
    f = tmp_path / "p.csv"
    f.write_text("customer,when\nC-1,2026-01-01\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", sqlite_url, "import", "purchases", str(f)])
    assert result.exit_code == 1
    assert "missing column(s) customer_ref, occurred_at, amount, currency" in result.stderr


def test_register_missing_registers_a_customer_once_and_reports_no_error_for_its_other_rows(
    store_url: str, tmp_path: Path
) -> None:
    # The automatic registration of a row carries its row's time; later rows of the same new
    # customer ask again with another time: that is "already registered", not an error.
    f = tmp_path / "p.csv"
    f.write_text(
        "customer_ref,occurred_at,amount,currency,order_id\n"
        "NEW-2,2026-03-02,10,CNY,A\n"
        "NEW-2,2026-04-02,20,CNY,B\n"
        "NEW-2,2026-05-02,30,CNY,C\n",
        encoding="utf-8",
    )
    code, report, err = run(store_url, "import", "purchases", str(f), "--register-missing")
    assert (code, report["stored"], report["rejected"], report["errors"]) == (0, 3, 0, [])
    assert "line" not in err
    with CRM(store_url) as crm:
        customer = crm.get_customer("NEW-2")
        assert customer.paid == {"CNY": 6000}
        assert customer.registered_at.isoformat() == "2026-03-02T23:59:59.999999+00:00"
