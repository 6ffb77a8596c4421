"""One window pulled as many small time slices at once, delivered in exactly a sequential pull's order.

Slices are half-open ranges of whole seconds, so no second (and no event) is in two of them, and
each has its own scroll and time cursor. The pull starts as one slice; a slice whose first page
comes back full is cut, from the time that page covered, into pieces expected to hold under a page
each, so most slices take one request and a burst is cut finer than a quiet stretch. Workers take
the earliest slice nobody pulls yet, so slices are fetched roughly in the order the consumer reads
them, and a few slices' pages are in flight and buffered at any time, never the window: a shared
budget of bytes (a page per worker and a backlog) holds workers back, before they send a
request, when the consumer is the slower side.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_cloud4wi.api.pull import PullStats
from airflow_provider_cloud4wi.windows import API_DATE_FORMAT

#: Batches the slice being read may hold whatever the shared budget says, so it always moves.
_BATCHES_AHEAD_OF_READER = 2
#: Share of a page a piece cut from a full page's time span is expected to hold.
_PIECE_FILL = 0.8
#: The most pieces one cut makes, per worker; the last of them is whatever is left.
_PIECES_PER_WORKER = 4
_POLL_SECONDS = 0.2
_SECOND = dt.timedelta(seconds=1)

#: Given the first and the last second a full page covered, the slice's new last second, or None.
Splitter = Callable[[str, str], str | None]


@dataclass(eq=False)
class Slice:
    """A range ``[first, last]`` of whole seconds (inclusive, canonical UTC) of the window."""

    first: str
    last: str
    stats: PullStats = field(default_factory=PullStats)
    batches: deque[Any] = field(default_factory=deque)
    following: Slice | None = None
    started: bool = False
    finished: bool = False


class _Done:
    """Put after a slice's last batch."""


class _Stopped(Exception):
    """The consumer went away: a worker stops pulling."""


@dataclass
class _Failed:
    error: BaseException


@dataclass
class _Batch:
    """A batch of a slice waiting for the consumer, and the bytes it holds."""

    batch: Any
    size: int


def _seconds(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, API_DATE_FORMAT)


def _text(value: dt.datetime) -> str:
    return value.strftime(API_DATE_FORMAT)


def cut_after(second: str, last: str, covered_seconds: int, max_pieces: int) -> list[tuple[str, str]]:
    """
    The seconds after ``second`` up to ``last`` cut into pieces of about 0.8 x ``covered_seconds``.

    ``covered_seconds`` is the width of a full page, so each piece is expected to hold under a
    page. At most ``max_pieces``: when more would be needed, the last piece is all that is left,
    to be cut in its turn when its own first page comes back full. Never narrower than a second.
    """
    start, end = _seconds(second) + _SECOND, _seconds(last)
    rest = int((end - start).total_seconds()) + 1
    if rest < 1:
        return []
    width = max(1, int(_PIECE_FILL * covered_seconds))
    count = math.ceil(rest / width)
    if count <= max_pieces:
        # Pieces of equal width, each at most ``width``.
        cuts = [start + _SECOND * (rest * index // count) for index in range(count)]
    else:
        # The far rest stays one slice: workers take it after the pieces before it, so it is cut
        # long before the consumer reaches it, and a dense first page does not cut a quiet month
        # into thousands of empty slices.
        cuts = [start + _SECOND * (width * index) for index in range(max_pieces)]
    bounds = [*cuts, end + _SECOND]
    return [(_text(begin), _text(after - _SECOND)) for begin, after in itertools.pairwise(bounds)]


class SlicedPull:
    """
    Runs ``pull_slice`` on slices of ``[first, last]`` in ``max_concurrency`` threads.

    Memory is bounded by the workers and ``backlog_bytes``, not by the window: a worker asks for
    its next page only while the batches waiting for the consumer, plus a page's worth for each
    request in flight, fit in a page per worker and the backlog. So every worker has a request in
    flight while the consumer keeps up, and when it does not, the workers stop before their next
    request. Room goes to the slices in the consumer's order, and the slice it reads may always
    hold two batches, so it moves whatever the later slices hold.

    :param pull_slice: yields one slice's batches, oldest first, calling the splitter it is given
        after each full page from a fresh query.
    :param stats: the whole pull's statistics, summed from the slices' as they finish.
    :param weigh: the bytes one batch holds.
    :param backlog_bytes: the bytes of batches that may wait for the consumer beyond a page per
        worker.
    """

    def __init__(
        self,
        pull_slice: Callable[[Slice, Splitter], Iterator[Any]],
        first: str,
        last: str,
        *,
        max_concurrency: int,
        stats: PullStats,
        weigh: Callable[[Any], int],
        backlog_bytes: int,
    ) -> None:
        self._pull_slice = pull_slice
        #: The slice the consumer reads; the slices after it follow in time order.
        self._reading: Slice | None = Slice(first, last)
        self._workers = max_concurrency
        self._stats = stats
        self._weigh = weigh
        self._backlog = backlog_bytes
        #: Bytes of the batches waiting for the consumer, and set aside for requests in flight.
        self._held = 0
        self._reserved = 0
        #: What one request is expected to bring: the last batch's size.
        self._batch_bytes = 0
        #: The slices whose worker waits for room before its next request.
        self._waiting: set[Slice] = set()
        self._changed = threading.Condition()
        self._stopping = False
        self._failure: BaseException | None = None
        self._started = 0

    def __iter__(self) -> Iterator[Any]:
        # One slice goes first: a refused key or a wrong organization then fails after one
        # request, as in a sequential pull, and only a pull that works fans out.
        self._start_workers(1)
        try:
            while self._reading is not None:
                yield from self._drain(self._reading)
                with self._changed:
                    self._reading = self._reading.following
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._stopping = True
                self._changed.notify_all()

    def _start_workers(self, count: int) -> None:
        for _ in range(count):
            self._started += 1
            name = f"cloud4wi-slice-{self._started}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _drain(self, piece: Slice) -> Iterator[Any]:
        while True:
            item = self._next_item(piece)
            if self._started < self._workers and not isinstance(item, _Failed):
                self._start_workers(self._workers - self._started)
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item.batch

    def _next_item(self, piece: Slice) -> Any:
        with self._changed:
            while not piece.batches:
                if self._failure is not None:
                    raise self._failure
                self._changed.wait(timeout=_POLL_SECONDS)
            item = piece.batches.popleft()
            if isinstance(item, _Batch):
                self._held -= item.size
                self._changed.notify_all()
            return item

    def _work(self) -> None:
        while (piece := self._take()) is not None:
            try:
                self._run(piece)
            except _Stopped:
                return
            except BaseException as error:  # handed to the consumer, which raises it
                with self._changed:
                    self._failure = error
                    piece.batches.append(_Failed(error))
                    self._changed.notify_all()
                return
            finally:
                with self._changed:
                    piece.finished = True
                    self._changed.notify_all()

    def _run(self, piece: Slice) -> None:
        batches = self._pull_slice(piece, lambda since, second: self._split(piece, since, second))
        while True:
            reserved = self._reserve(piece)
            try:
                batch = next(batches)
            except StopIteration:
                break
            finally:
                with self._changed:
                    self._reserved -= reserved
            self._put(piece, batch)
            del batch  # the consumer's now: not kept while the next request waits for room
        self._add_stats(piece.stats)
        with self._changed:
            piece.batches.append(_Done())
            self._changed.notify_all()

    def _reserve(self, piece: Slice) -> int:
        """Wait until the next request of ``piece`` fits in the budget; the bytes set aside for it."""
        with self._changed:
            self._waiting.add(piece)
            try:
                while not self._stopping and not self._may_fetch(piece):
                    self._changed.wait(timeout=_POLL_SECONDS)
            finally:
                self._waiting.discard(piece)
            if self._stopping:
                raise _Stopped
            self._reserved += self._batch_bytes
            self._changed.notify_all()  # the next slice in line may be waiting for this one
            return self._batch_bytes

    def _may_fetch(self, piece: Slice) -> bool:
        if piece is self._reading and len(piece.batches) < _BATCHES_AHEAD_OF_READER:
            return True
        if self._earlier_slice_waits(piece):
            return False
        room = self._backlog + self._workers * self._batch_bytes
        return self._held + self._reserved + self._batch_bytes <= room

    def _earlier_slice_waits(self, piece: Slice) -> bool:
        """
        Whether a slice the consumer reads before ``piece`` waits for room too: room goes in the
        consumer's order, or a far slice's request would take it while the consumer stalls on a
        near one (with 16 workers and room for 9 requests, that made the pull slower than 8).
        """
        earlier = self._reading
        while earlier is not None and earlier is not piece:
            if earlier in self._waiting:
                return True
            earlier = earlier.following
        return False

    def _take(self) -> Slice | None:
        """The earliest slice nobody pulls yet, waiting while cuts may still come; None at the end."""
        with self._changed:
            while not self._stopping:
                piece = self._reading
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

    def _split(self, piece: Slice, since: str, second: str) -> str | None:
        """Cut what ``piece`` holds after ``second`` into pieces for any worker; its new last second."""
        with self._changed:
            if self._stopping:
                return None
            covered = int((_seconds(second) - _seconds(since)).total_seconds()) + 1
            pieces = cut_after(second, piece.last, covered, _PIECES_PER_WORKER * self._workers)
            if len(pieces) < 2:
                return None
            # The slice keeps the first piece (its next query starts at ``second``); the others
            # follow it in time order, ahead of every later slice.
            after = piece.following
            for begin, end in reversed(pieces[1:]):
                after = Slice(begin, end, following=after)
            piece.following, piece.last = after, pieces[0][1]
            self._changed.notify_all()
            return piece.last

    def _put(self, piece: Slice, batch: Any) -> None:
        size = self._weigh(batch)
        with self._changed:
            if self._stopping:
                raise _Stopped
            piece.batches.append(_Batch(batch, size))
            self._held += size
            self._batch_bytes = size
            self._changed.notify_all()

    def _add_stats(self, part: PullStats) -> None:
        with self._changed:
            for item in fields(PullStats):
                if item.name != "started_monotonic":
                    setattr(
                        self._stats, item.name, getattr(self._stats, item.name) + getattr(part, item.name)
                    )
