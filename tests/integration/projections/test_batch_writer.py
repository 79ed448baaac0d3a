"""The batch writer's bulk paths (JSON on SQLite, COPY on PostgreSQL) store exactly the rows
that one INSERT per row would, whatever the text holds."""

from __future__ import annotations

from crm_es import CRM
from crm_es.projections.batch_writer import BULK_MIN_ROWS, BatchWriter
from crm_es.store.database import Database

TEXTS = ["plain", "王芳", "😀 emoji", 'quote " and \\ backslash', "a\x00b", "\x1f\x7f", "", " 12",
         "12", "1e5", "null", "NaN", "\\u0000 typed", "\u2028", "x" * 5000]  # fmt: skip
INTS = [0, -1, 2**62, -(2**63), 10**15]


def test_bulk_inserts_store_the_same_rows_as_one_insert_per_row(crm: CRM) -> None:
    db = Database(crm.store.config)
    rows = [
        (TEXTS[i % len(TEXTS)], INTS[i % len(INTS)], None if i % 3 else TEXTS[-i % len(TEXTS)])
        for i in range(max(4 * BULK_MIN_ROWS, 2 * len(TEXTS)))
    ]
    if db.postgres:  # PostgreSQL text cannot hold NUL at all, whichever way it is sent
        rows = [r for r in rows if "\x00" not in r[0] and "\x00" not in (r[2] or "")]
    insert = "INSERT INTO {t} (a, b, c) VALUES (?, ?, ?)"
    try:
        with db.transaction() as tx:
            for name in ("bulk", "one_by_one", "nul_free"):
                tx.execute(f"CREATE TABLE {name} (a TEXT, b BIGINT, c TEXT)")
            writer = BatchWriter(db.postgres)
            writer.run(tx, {"t": "bulk"}, [(insert, row) for row in rows])
            without_nul = [r for r in rows if "\x00" not in r[0] and "\x00" not in (r[2] or "")]
            writer.run(tx, {"t": "nul_free"}, [(insert, row) for row in without_nul])
            for row in rows:
                tx.execute("INSERT INTO one_by_one (a, b, c) VALUES (?, ?, ?)", row)
        with db.reading() as tx:
            for name, expected in (("bulk", rows), ("nul_free", without_nul)):
                stored = tx.query(f"SELECT a, b, c FROM {name}")
                assert sorted(stored, key=repr) == sorted(expected, key=repr), name
            reference = tx.query("SELECT a, b, c FROM one_by_one")
            assert sorted(reference, key=repr) == sorted(rows, key=repr)
            if not db.postgres:  # the same storage classes, not only equal values
                types = "SELECT typeof(a), typeof(b), typeof(c) FROM {} ORDER BY rowid"
                assert tx.query(types.format("bulk")) == tx.query(types.format("one_by_one"))
    finally:
        db.close()


def test_statements_on_one_table_keep_their_order_across_runs(crm: CRM) -> None:
    db = Database(crm.store.config)
    insert = "INSERT INTO {t} (k, v) VALUES (?, ?)"
    update = "UPDATE {t} SET v = ? WHERE k = ?"
    statements = [(insert, (k, 0)) for k in range(BULK_MIN_ROWS * 2)]
    statements += [(update, (1, k)) for k in range(0, BULK_MIN_ROWS * 2, 2)]
    statements += [(insert, (k, 5)) for k in range(BULK_MIN_ROWS * 2, BULK_MIN_ROWS * 3)]
    statements += [(update, (2, k)) for k in range(BULK_MIN_ROWS * 2, BULK_MIN_ROWS * 3)]
    try:
        with db.transaction() as tx:
            tx.execute("CREATE TABLE ordered (k BIGINT PRIMARY KEY, v BIGINT)")
            BatchWriter(db.postgres).run(tx, {"t": "ordered"}, statements)
        with db.reading() as tx:
            stored = dict(tx.query("SELECT k, v FROM ordered"))  # type: ignore[arg-type]
        assert stored == {
            k: (1 if k % 2 == 0 else 0) if k < BULK_MIN_ROWS * 2 else 2
            for k in range(BULK_MIN_ROWS * 3)
        }
    finally:
        db.close()
