"""Run an iterator in a producer thread, a bounded number of batches ahead of its consumer.

The transfer operators use it so that the next API reply downloads (and is parsed) while the
current page is being written and compressed: on a worker with two cores, the pull and the
writer then overlap instead of taking turns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_DONE = object()
_log = logging.getLogger(__name__)


def prefetched(
    source: Iterator[T],
    *,
    batch: int = 10_000,
    depth: int = 2,
    on_abandon: Callable[[], object] | None = None,
    join_timeout: float = 2.0,
) -> Generator[T, None, None]:
    """
    Yield the items of ``source``, which a producer thread pulls up to ``depth`` batches ahead.

    The producer runs ``source`` exactly as a plain loop would (same order, same requests, same
    retries); it only runs ahead, by at most ``depth`` batches of ``batch`` items, so memory stays
    bounded. An exception raised by ``source`` is raised to the consumer after the items that came
    before it. When the consumer stops early (an error, or closing this generator), the producer
    stops at its next handoff and ``source`` is closed in the producer's thread. The consumer
    waits at most ``join_timeout`` seconds for that: a producer still blocked in a slow item is
    left to finish on its own (it is a daemon thread), after ``on_abandon`` was called to abort
    the work it is blocked in.

    :param source: the iterator to run ahead; it is used only from the producer thread.
    :param batch: items handed over at a time (one queue operation per batch, not per item).
    :param depth: batches the producer may hold ready.
    :param on_abandon: called from the consumer's thread when it stops early while the producer
        is still running, e.g. to close the HTTP session ``source`` reads from; its errors are
        logged, never raised over the consumer's own.
    :param join_timeout: seconds the consumer waits for the producer to end once it stops.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        items: list[T] = []
        try:
            for item in source:
                items.append(item)
                if len(items) >= batch:
                    if not put(items):
                        return
                    items = []
            if items and not put(items):
                return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="cloud4wi-prefetch", daemon=True)
    producer.start()
    finished = False
    try:
        while True:
            items = handoff.get()
            if items is _DONE:
                finished = True
                return
            if isinstance(items, BaseException):
                finished = True
                raise items
            yield from items
    finally:
        stop.set()
        if not finished and on_abandon is not None and producer.is_alive():
            try:
                on_abandon()
            except Exception:
                _log.warning("Aborting the prefetch producer's work failed.", exc_info=True)
        producer.join(join_timeout)
        if producer.is_alive():
            _log.warning("The prefetch producer is still busy; leaving it to end on its own.")
