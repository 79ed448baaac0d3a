"""What a read model is: its tables, their keys and indexes, and how each event changes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from crm_es.domain.events import CustomerEvent
from crm_es.projections.feed import RowKeys

if TYPE_CHECKING:
    from crm_es.store.store import Store

Statement = tuple[str, tuple[Any, ...]]
# A handler gets the event (the full domain event or its slim view: same field names, see
# slim_events.py) and the event's row keys; it returns the statements that apply the event.
Handler = Callable[[Any, RowKeys], Sequence[Statement]]


class ReadModel(ABC):
    """A read model: its tables and how each event changes them.

    ``tables`` maps a logical table name to its column definitions; SQL statements name exactly
    one table, as ``{logical}``, and use ``?`` placeholders. Handlers never read: they return
    inserts, upserts and deletes, so the engine can run a whole batch as a few ``executemany``
    (or ``COPY``) calls, table by table, each table's statements in event order.

    ``keys`` are the unique keys of insert-only fact tables and ``indexes`` the other indexes:
    both are built when a generation is created for catch-up, but only after the bulk fill when
    a rebuild fills a new generation (inserting into a table in key order costs a random B-tree
    write per row; building the index once at the end sorts instead). A table whose statements
    need its key while they run (upserts, updates, deletes) declares it in its columns instead.

    Bump ``schema_version`` whenever the tables or the handling change: the engine then asks for a
    rebuild instead of mixing old and new rows.
    """

    name: ClassVar[str]
    schema_version: ClassVar[int]
    tables: ClassVar[dict[str, str]]
    keys: ClassVar[dict[str, str]] = {}  # table -> "columns" of its unique key
    indexes: ClassVar[dict[str, str]] = {}  # index name suffix -> "{table} (columns)"
    # Tables holding (a piece of) personal data: their freed pages are always overwritten.
    personal_tables: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def handlers(self) -> Mapping[type[CustomerEvent], Handler]:
        """Per event class, the handler that turns such an event into statements; events of
        classes not listed leave this read model alone (and are not even decoded for it)."""

    def bind(self, store: Store) -> None:  # noqa: B027 - most read models need nothing
        """Called by the engine with its store before any event: a read model that needs a
        secret of the store (a hash key) takes it here."""

    def handle(self, event: CustomerEvent, row: RowKeys) -> Sequence[Statement]:
        """The statements that apply a domain event (none if it does not concern this model)."""
        handler = self.handlers().get(type(event))
        return () if handler is None else handler(event, row)
