"""Run an iterator in a producer thread, a bounded number of batches ahead of its consumer.

The transfer operators use it so that the next API reply downloads (and is parsed) while the
current page is being written and compressed: on a worker with two cores, the pull and the
writer then overlap instead of taking turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_DONE = object()


def prefetched(source: Iterator[T], *, batch: int = 10_000, depth: int = 2) -> Iterator[T]:
    """
    Yield the items of ``source``, which a producer thread pulls up to ``depth`` batches ahead.

    The producer runs ``source`` exactly as a plain loop would (same order, same requests, same
    retries); it only runs ahead, by at most ``depth`` batches of ``batch`` items, so memory stays
    bounded. An exception raised by ``source`` is raised to the consumer after the items that came
    before it. When the consumer stops early (an error, or closing this generator), the producer
    stops at its next item and ``source`` is closed in the producer's thread; this generator
    returns only once the producer has ended, so ``source``'s resources are free to clean up.

    :param source: the iterator to run ahead; it is used only from the producer thread.
    :param batch: items handed over at a time (one queue operation per batch, not per item).
    :param depth: batches the producer may hold ready.
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
    try:
        while True:
            items = handoff.get()
            if items is _DONE:
                return
            if isinstance(items, BaseException):
                raise items
            yield from items
    finally:
        stop.set()
        producer.join()
