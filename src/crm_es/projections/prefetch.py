"""Preparing the next batches in a helper thread while the caller writes the current one.

Reading and decoding (Python) and writing (mostly inside SQLite or the PostgreSQL client, which
release the GIL while the database works) then overlap on two cores. At most ``depth`` prepared
batches wait in the queue, so memory stays that of a few batches whatever the log's length.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, Protocol, TypeVar


class _Positioned(Protocol):
    position: int


P = TypeVar("P", bound=_Positioned)
_END = object()


class Prefetcher(Generic[P]):
    """``with Prefetcher(prepare, start, done) as batches: for batch in batches: ...``

    The thread calls ``prepare(position)`` from ``start`` on, each time from the position the
    previous batch ended at, until it returns None; ``done()`` runs in the thread as it ends
    (to close its connection). An exception in the thread is raised in the caller; leaving the
    ``with`` early stops the thread.
    """

    def __init__(
        self,
        prepare: Callable[[int], P | None],
        start: int,
        done: Callable[[], None] = lambda: None,
        depth: int = 2,
    ) -> None:
        self._prepare, self._start, self._done = prepare, start, done
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projection-prefetch", daemon=True)

    def __enter__(self) -> Iterator[P]:
        self._thread.start()
        return self._batches()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a thread waiting to put
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _batches(self) -> Iterator[P]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            position = self._start
            while not self._stop.is_set():
                batch = self._prepare(position)
                if batch is None:
                    self._put(_END)
                    return
                if not self._put(batch):
                    return
                position = batch.position
        except BaseException as e:  # handed to the caller, raised there
            self._put(e)
        finally:
            self._done()
