"""Read model ``merges``: which customer was merged into which, and when (both times).

One row per merge, from the duplicate's side of ``CustomersMerged`` (the survivor's side says
the same). The reports resolve it as of (D, T) in one place, :mod:`crm_es.reports.facts.merges`:
from a merge on, every fact of the duplicate counts for the survivor. Holds no personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from crm_es.domain import events as ev
from crm_es.projections.feed import RowKeys
from crm_es.projections.read_model import Handler, ReadModel, Statement
from crm_es.store.database import BIGINT, TEXT


class Merges(ReadModel):
    name = "merges"
    schema_version = 1
    tables: ClassVar[dict[str, str]] = {
        "merge_facts": (
            f"duplicate_id {TEXT} NOT NULL, version {BIGINT} NOT NULL, "
            f"survivor_id {TEXT} NOT NULL, occurred_at {TEXT} NOT NULL, "
            f"recorded_at {TEXT} NOT NULL"
        ),
    }
    keys: ClassVar[dict[str, str]] = {"merge_facts": "duplicate_id, version"}

    def handlers(self) -> Mapping[type[ev.CustomerEvent], Handler]:
        return {ev.CustomersMerged: self._merged}

    @staticmethod
    def _merged(e: ev.CustomersMerged, row: RowKeys) -> list[Statement]:
        if row.customer_id != str(e.duplicate_id):
            return []  # the survivor's side of the same merge
        return [(
            "INSERT INTO {merge_facts} (duplicate_id, version, survivor_id, occurred_at, "
            "recorded_at) VALUES (?, ?, ?, ?, ?)",
            (row.customer_id, e.originator_version, str(e.survivor_id), row.occurred_at,
             row.recorded_at),
        )]  # fmt: skip
