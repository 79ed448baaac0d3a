"""The CSV files the import reads: their columns, which are required, and the import's batch
and cache sizes (apart from the import itself, so the command line's help needs no store)."""

from __future__ import annotations

from typing import Final

CUSTOMER_COLUMNS: Final = (
    "external_ref",
    "name",
    "email",
    "phone",
    "birthday",
    "kind",
    "category",
    "region",
    "industry",
    "company_size",
    "income_band",
    "source_channel",
    "owner",
    "tags",
    "occurred_at",
)


PURCHASE_COLUMNS: Final = (
    "customer_ref",
    "occurred_at",
    "amount",
    "currency",
    "order_id",
    "channel",
    "product_category",
    "staff",
)


# Rows per transaction: SQLite writes each touched index page once per commit, so large
# transactions insert faster (1M rows into a 1M-row index: 10,000 per commit 67k rows/s, 50,000
# per commit 90k rows/s, measured); a crash loses at most one chunk, which re-running the file
# (idempotent) stores again.
IMPORT_CHUNK_ROWS: Final = 50_000


# Customer states kept while importing (see CustomerCache.resized): ~3 KB each.
IMPORT_CACHE_SIZE: Final = 200_000


COLUMNS: Final = {"customers": CUSTOMER_COLUMNS, "purchases": PURCHASE_COLUMNS}


REQUIRED: Final = {
    "customers": ("external_ref",),
    "purchases": ("customer_ref", "occurred_at", "amount", "currency"),
}
