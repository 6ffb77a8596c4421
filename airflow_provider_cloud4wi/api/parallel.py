"""One window pulled as time slices at once, delivered in exactly the order of a sequential pull.

Slices are half-open ranges of whole seconds, so no second (and no event) is in two of them, and
each has its own scroll and time cursor. A slice whose first page comes back full is split again
while a worker would otherwise idle, so a burst hour does not end up pulled serially. The consumer
reads the slices in time order; each slice holds at most a few batches ahead of it, so memory stays
bounded whatever the window holds and whatever order the slices finish in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_cloud4wi.api.pull import PullStats
from airflow_provider_cloud4wi.windows import API_DATE_FORMAT

#: Batches (of up to a page of events each) a slice may hold before its worker waits.
_BATCHES_AHEAD = 2
_POLL_SECONDS = 0.2
_SECOND = dt.timedelta(seconds=1)

#: Given the last second a slice delivered, the new last second it should stop at, or None.
Splitter = Callable[[str], str | None]


@dataclass(eq=False)
class Slice:
    """A range ``[first, last]`` of whole seconds (inclusive, canonical UTC) of the window."""

    first: str
    last: str
    stats: PullStats = field(default_factory=PullStats)
    batches: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(maxsize=_BATCHES_AHEAD))
    following: Slice | None = None
    started: bool = False
    finished: bool = False


class _Done:
    """Put after a slice's last batch."""


@dataclass
class _Failed:
    error: BaseException


def _seconds(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, API_DATE_FORMAT)


def _text(value: dt.datetime) -> str:
    return value.strftime(API_DATE_FORMAT)


def initial_slices(first: str, last: str, count: int) -> list[Slice]:
    """``[first, last]`` cut into up to ``count`` slices of equal width in whole seconds."""
    start, end = _seconds(first), _seconds(last)
    width = int((end - start).total_seconds()) + 1
    count = max(1, min(count, width))
    cuts = [start + _SECOND * (width * index // count) for index in range(count)]
    slices = [Slice(_text(cut), _text(following - _SECOND)) for cut, following in itertools.pairwise(cuts)]
    slices.append(Slice(_text(cuts[-1]), last))
    for earlier, later in itertools.pairwise(slices):
        earlier.following = later
    return slices


class SlicedPull:
    """
    Runs ``pull_slice`` on slices of ``[first, last]`` in ``max_concurrency`` threads.

    :param pull_slice: yields one slice's events, oldest first, calling the splitter it is given
        after each full page from a fresh query.
    :param stats: the whole pull's statistics, summed from the slices' as they finish.
    :param batch_size: events per batch handed from a worker to the consumer.
    """

    def __init__(
        self,
        pull_slice: Callable[[Slice, Splitter], Iterator[Any]],
        first: str,
        last: str,
        *,
        max_concurrency: int,
        stats: PullStats,
        batch_size: int,
    ) -> None:
        self._pull_slice = pull_slice
        self._head = initial_slices(first, last, max_concurrency)[0]
        self._workers = max_concurrency
        self._stats = stats
        self._batch_size = batch_size
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._started = 0

    def __iter__(self) -> Iterator[Any]:
        # One slice goes first: a refused key or a wrong organization then fails after one
        # request, as in a sequential pull, and only a pull that works fans out.
        self._start_workers(1)
        try:
            piece: Slice | None = self._head
            while piece is not None:
                yield from self._drain(piece)
                with self._changed:
                    piece = piece.following
        finally:
            self._stopping.set()
            with self._changed:
                self._changed.notify_all()

    def _start_workers(self, count: int) -> None:
        for _ in range(count):
            self._started += 1
            name = f"cloud4wi-slice-{self._started}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _drain(self, piece: Slice) -> Iterator[Any]:
        while True:
            try:
                item = piece.batches.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._failure is not None:
                    raise self._failure from None
                continue
            if self._started < self._workers and not isinstance(item, _Failed):
                self._start_workers(self._workers - self._started)
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield from item

    def _work(self) -> None:
        while (piece := self._take()) is not None:
            try:
                self._run(piece)
            except BaseException as error:  # handed to the consumer, which raises it
                self._failure = error
                self._put(piece, _Failed(error))
                return
            finally:
                with self._changed:
                    piece.finished = True
                    self._changed.notify_all()

    def _run(self, piece: Slice) -> None:
        batch: list[Any] = []
        for event in self._pull_slice(piece, lambda second: self._split(piece, second)):
            batch.append(event)
            if len(batch) >= self._batch_size:
                self._put(piece, batch)
                batch = []
        if batch:
            self._put(piece, batch)
        self._add_stats(piece.stats)
        self._put(piece, _Done())

    def _take(self) -> Slice | None:
        """The earliest slice nobody pulls yet, waiting while splits may still come; None at the end."""
        with self._changed:
            while not self._stopping.is_set():
                piece: Slice | None = self._head
                busy = False
                while piece is not None:
                    if not piece.started:
                        piece.started = True
                        return piece
                    busy = busy or not piece.finished
                    piece = piece.following
                if not busy:
                    return None
                self._changed.wait(timeout=_POLL_SECONDS)
            return None

    def _split(self, piece: Slice, second: str) -> str | None:
        """Hand the later half of ``piece`` after ``second`` to an idle worker; its new last second."""
        with self._changed:
            if self._stopping.is_set() or self._has_unstarted():
                return None
            start, end = _seconds(second), _seconds(piece.last)
            width = int((end - start).total_seconds())
            if width < 2:
                return None
            middle = start + _SECOND * ((width + 1) // 2)
            later = Slice(_text(middle), piece.last, following=piece.following)
            piece.following, piece.last = later, _text(middle - _SECOND)
            self._changed.notify_all()
            return piece.last

    def _has_unstarted(self) -> bool:
        piece: Slice | None = self._head
        while piece is not None:
            if not piece.started:
                return True
            piece = piece.following
        return False

    def _put(self, piece: Slice, item: Any) -> None:
        while not self._stopping.is_set():
            try:
                piece.batches.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _add_stats(self, part: PullStats) -> None:
        with self._changed:
            for item in fields(PullStats):
                if item.name != "started_monotonic":
                    setattr(
                        self._stats, item.name, getattr(self._stats, item.name) + getattr(part, item.name)
                    )
