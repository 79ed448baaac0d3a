"""Group commit: concurrent commands of one process share a transaction.

On PostgreSQL every commit waits for the write-ahead log to reach the disk, and the library's
insert takes a table lock, so one-commit-per-command caps all writers together at roughly a
thousand commits a second. Here the first thread to arrive commits (the leader) while others queue
behind it; when its commit returns, it hands leadership to the first queued thread, which commits
everything queued meanwhile in ONE transaction. A lone client commits at once (no added latency);
under load, batches grow by themselves. A command is acknowledged only after the transaction
holding its events committed. If a batch fails, for whatever reason (a version collision, a value
the store refuses), its items are committed one by one so that only the command at fault sees
the error; the others are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

MAX_BATCH: Final = 256

# (events, command records, customer states to snapshot) -> ignored
Put = Callable[[Sequence[Any], Sequence[Any], Sequence[Any]], object]


class _Item:
    __slots__ = ("done", "error", "events", "lead", "records", "snapshots")

    def __init__(
        self, events: Sequence[Any], records: Sequence[Any], snapshots: Sequence[Any]
    ) -> None:
        self.events, self.records, self.snapshots = events, records, snapshots
        # Only a follower waits on it, so a lone leader (one client: every command) does not
        # pay for building one (~3 µs: an Event is a Condition and two locks).
        self.done: threading.Event | None = None
        self.lead = False  # set when this item's thread must take over as leader
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, put: Put, max_batch: int = MAX_BATCH) -> None:
        self._put = put
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Item] = []
        self._leading = False

    def commit(
        self, events: Sequence[Any], records: Sequence[Any] = (), snapshots: Sequence[Any] = ()
    ) -> None:
        """Store ``events`` (with command records and snapshots of the states they lead to)
        durably; raises what storing them raised."""
        item = _Item(events, records, snapshots)
        with self._lock:
            if self._leading:
                item.done = threading.Event()
                self._queue.append(item)
                follower = True
            else:
                self._leading = True
                follower = False
        if follower:
            assert item.done is not None
            item.done.wait()
            if not item.lead:
                self._raise(item)
                return
        self._lead(item)
        self._raise(item)

    def _lead(self, own: _Item) -> None:
        batch = [own] if not own.lead else self._take()
        self._flush(batch)
        with self._lock:
            if self._queue:
                successor = self._queue[0]  # it collects the rest when it wakes
                successor.lead = True
                assert successor.done is not None  # queued items are followers
                successor.done.set()
            else:
                self._leading = False

    def _take(self) -> list[_Item]:
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        for item in batch:
            item.lead = False
        return batch

    def _flush(self, batch: list[_Item]) -> None:
        try:
            self._put(
                [e for i in batch for e in i.events],
                [r for i in batch for r in i.records],
                [s for i in batch for s in i.snapshots],
            )
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
            else:
                for item in batch:  # find who is at fault: commit each alone
                    try:
                        self._put(item.events, item.records, item.snapshots)
                    except BaseException as e:
                        item.error = e
        except BaseException as e:  # Ctrl-C, exit: nobody's save is known to be done
            for item in batch:
                item.error = e
        for item in batch:
            if item.done is not None:
                item.done.set()

    @staticmethod
    def _raise(item: _Item) -> None:
        if item.error is not None:
            raise item.error
