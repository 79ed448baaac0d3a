"""When each customer was last contacted, as of a query: the latest contact logged that
occurred by ``as_of`` and was recorded by ``known_at``, from the ``contacts`` read model's fact
rows (inbound and outbound alike), so the answer for (D, T) never changes.
"""

from __future__ import annotations

from datetime import datetime

from crm_es.domain.times import from_iso
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


def last_contacts(tx: Tx, tables: dict[str, str], query: ReportQuery) -> dict[str, datetime]:
    """Business time of each contacted customer's latest contact as of the query (customers
    never contacted by then are left out)."""
    cut, params = query.cut()
    rows = tx.query(
        f"SELECT customer_id, MAX(occurred_at) FROM {tables['contact_facts']} WHERE {cut} "
        "GROUP BY customer_id",
        params,
    )
    return {str(cid): from_iso(str(latest)) for cid, latest in rows}
