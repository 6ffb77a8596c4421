"""Server-side state: rendered pages, scroll cursors, the page cache and the statistics."""

from __future__ import annotations

import base64
import contextlib
import itertools
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.dataset import _Selection
from airflow_provider_cloud4wi.testing.simulator.faults import _FAULT_KINDS
from airflow_provider_cloud4wi.testing.simulator.protocol import _ApiError


@dataclass
class _Page:
    """Rendered events: their count, the comma-joined JSON, and the last few events alone."""

    count: int
    events: bytes
    tail: tuple[bytes, ...]

    @property
    def size_bytes(self) -> int:
        return len(self.events) + sum(len(item) for item in self.tail) + 64


_EMPTY_PAGE = _Page(0, b"", ())
_TAIL_LENGTH = 5


class _Cursor:
    """A position in an ordered event stream; the generator is created and advanced lazily."""

    def __init__(self, selection: _Selection, make_iterator: Callable[[], Iterator[int]]) -> None:
        self.selection = selection
        self._make_iterator = make_iterator
        self._iterator: Iterator[int] | None = None
        self._generated = 0  # how many events the generator has yielded
        self.position = 0  # how many distinct events were handed out
        self.exhausted = False  # a page came back short: the stream has ended
        self.tail: tuple[bytes, ...] = ()  # last events of the previous page

    def take(self, count: int, render: Callable[[Iterable[int]], list[bytes]]) -> _Page:
        """Render the next ``count`` events at ``position`` (without moving ``position``)."""
        if self._iterator is None:
            self._iterator = self._make_iterator()
        if self._generated < self.position:
            deque(itertools.islice(self._iterator, self.position - self._generated), maxlen=0)
            self._generated = self.position
        documents = render(itertools.islice(self._iterator, count))
        self._generated += len(documents)
        if not documents:
            return _EMPTY_PAGE
        return _Page(len(documents), b",".join(documents), tuple(documents[-_TAIL_LENGTH:]))


@dataclass
class _Scroll:
    scroll_id: str
    organization_id: str
    size: int
    cursor: _Cursor
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ScrollStore:
    """The open scrolls; a scroll expires ``ttl`` seconds after its last use.

    :param ttl: seconds a scroll lives after its last use.
    :param stats: where openings and expiries are counted.
    """

    def __init__(self, ttl: float, stats: _Stats) -> None:
        self._ttl = ttl
        self._stats = stats
        self._scrolls: dict[str, _Scroll] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._scrolls)

    def open(self, organization_id: str, size: int, cursor: _Cursor) -> _Scroll:
        """Register a new scroll over ``cursor`` (and drop the expired ones)."""
        now = time.monotonic()
        scroll_id = base64.urlsafe_b64encode(b"c4wsim" + secrets.token_bytes(25)).decode()
        scroll = _Scroll(scroll_id, organization_id, size, cursor, now)
        with self._lock:
            expired = [sid for sid, s in self._scrolls.items() if now - s.last_used > self._ttl]
            for sid in expired:
                del self._scrolls[sid]
            self._scrolls[scroll_id] = scroll
        if expired:
            self._stats.add("scrolls_expired", len(expired))
        self._stats.add("scrolls_opened")
        return scroll

    def find(self, scroll_id: str, organization_id: str) -> _Scroll:
        """The live scroll ``scroll_id`` of ``organization_id``, else the API's 404 error."""
        now = time.monotonic()
        with self._lock:
            scroll = self._scrolls.get(scroll_id)
            if scroll is not None and now - scroll.last_used > self._ttl:
                del self._scrolls[scroll_id]
                self._stats.add("scrolls_expired")
                scroll = None
        if scroll is None or scroll.organization_id != organization_id:
            raise _ApiError(404, "scrollId not found or expired")
        return scroll

    def expire(self, scroll: _Scroll) -> None:
        """Drop ``scroll`` and raise the API's expiry error."""
        with self._lock:
            removed = self._scrolls.pop(scroll.scroll_id, None)
        if removed is not None:
            self._stats.add("scrolls_expired")
        raise _ApiError(404, "scrollId not found or expired")


class _PageCache:
    """LRU cache of rendered pages keyed by (stream shape, position, count), bounded in bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[Any, ...], _Page] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> _Page | None:
        if self.capacity <= 0:
            return None
        with self._lock:
            page = self._entries.get(key)
            if page is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: tuple[Any, ...], page: _Page) -> None:
        size = page.size_bytes
        if self.capacity <= 0 or size > self.capacity:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.size_bytes
            self._entries[key] = page
            self._bytes += size
            while self._bytes > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size_bytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._entries),
                "bytes": self._bytes,
            }

    def clear_counters(self) -> None:
        with self._lock:
            self.hits = self.misses = 0


class _Stats:
    """Thread-safe counters exposed as ``Cloud4WiSimulator.stats`` and ``GET /_simulator/stats``."""

    ENDPOINTS = ("login", "logout", "organization_events", "customer_events", "control", "unknown")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counters: dict[str, int] = {
                "logins": 0,
                "login_failures": 0,
                "logouts": 0,
                "scrolls_opened": 0,
                "scrolls_expired": 0,
                "pages_served": 0,
                "events_served": 0,
                "bytes_served": 0,
            }
            self._requests = dict.fromkeys(self.ENDPOINTS, 0)
            self._faults = dict.fromkeys(_FAULT_KINDS, 0)
            self._max_in_flight = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def in_flight(self, count: int) -> None:
        """Note that ``count`` API requests are in flight now (the most ever seen is kept)."""
        with self._lock:
            self._max_in_flight = max(self._max_in_flight, count)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._counters,
                "requests": dict(self._requests),
                "faults": dict(self._faults),
                "max_requests_in_flight": self._max_in_flight,
            }


class _InFlight:
    """Counts the API requests being served and admits them up to a limit.

    :param stats: told each new count, for the most requests seen at once.
    """

    def __init__(self, stats: _Stats) -> None:
        self._stats = stats
        self._count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def admit(self, limit: int) -> Iterator[bool]:
        """Whether one more request may be served now (``limit`` 0 admits all); held while it is."""
        with self._lock:
            admitted = not limit or self._count < limit
            if admitted:
                self._count += 1
            count = self._count
        if admitted:
            self._stats.in_flight(count)
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._count -= 1
