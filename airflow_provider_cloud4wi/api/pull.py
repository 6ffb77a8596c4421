"""The exactly-once pull: a time cursor, the scroll state, and delivering each page's new events.

Events arrive sorted by ``utcTime``. A scroll is not idempotent, so a continuation that failed is
never sent again: the pull falls back to a fresh query from the last second it delivered, and the
cursor drops what it already yielded at that second. See ARCHITECTURE.md for the whole argument.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from airflow_provider_cloud4wi.api import codec
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError
from airflow_provider_cloud4wi.api.logs import Log
from airflow_provider_cloud4wi.windows import Window, format_api_date, parse_instant

T = TypeVar("T")

#: More distinct events than this at one second means a server inventing ids, not a burst.
MAX_EVENTS_AT_ONE_SECOND = 100_000
#: Consecutive pages that bring nothing new before the pull gives up on a server going round.
MAX_PAGES_WITHOUT_PROGRESS = 20


@dataclass
class PullStats:
    """What one pull did, for logs and operators' results."""

    pages: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    out_of_order_dropped: int = 0
    outside_window_dropped: int = 0
    resumes: int = 0
    retries: int = 0
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the pull started."""
        return time.monotonic() - self.started_monotonic

    @property
    def events_per_second(self) -> float:
        """Yield rate so far."""
        return self.events / max(self.elapsed_seconds, 1e-9)


class EventPull(Generic[T]):
    """
    The events of one pull, as an iterator, with its :class:`PullStats` filled in as it goes.

    Nothing is requested until the first event is asked for.
    """

    def __init__(self, events: Iterator[T], stats: PullStats, source: Iterator[Any] | None = None) -> None:
        self._events = events
        self.stats = stats
        #: What ``events`` is made from, closed with it.
        self._source = source

    def __iter__(self) -> Iterator[T]:
        # The generator itself, so that a for loop runs without a Python call per event.
        return self._events

    def __next__(self) -> T:
        return next(self._events)

    def close(self) -> None:
        """Stop the pull (its generator runs its clean-up)."""
        for part in (self._events, self._source):
            close = getattr(part, "close", None)
            if close is not None:
                close()


class Verdict(Enum):
    """What the cursor makes of an event."""

    NEW = "new"
    DUPLICATE = "duplicate"
    OLDER = "older"


class TimeCursor:
    """
    Where a pull stands: the last second delivered and the event ids delivered at it.

    Anything older than the cursor was delivered already (or came out of order), and only the ids
    sharing the cursor's second need remembering: memory stays bounded by the busiest second.
    """

    def __init__(self, first_second: str) -> None:
        self.second = first_second
        self.ids_at_second: set[str] = set()

    def accept(self, second: str, event_id: str) -> Verdict:
        """Record the event (at its whole ``second``, canonical UTC) and say whether it is new."""
        if second > self.second:
            self.second = second
            self.ids_at_second = {event_id}
            return Verdict.NEW
        if second < self.second:
            return Verdict.OLDER
        if event_id in self.ids_at_second:
            return Verdict.DUPLICATE
        self.ids_at_second.add(event_id)
        return Verdict.NEW

    @property
    def resume_from(self) -> str:
        """The ``dateStart`` a fresh query must use to continue without a gap."""
        return self.second


class WindowFilter:
    """
    Whether an event belongs to the window, and at which whole second the cursor files it.

    The API's usual ``...Z`` whole-second form is compared as text with the inclusive bounds; any
    other form (a fraction, an offset) is parsed and compared as an instant with the half-open
    window, then filed at its whole second.
    """

    def __init__(self, window: Window, bounds: tuple[str, str]) -> None:
        self.window = window
        self.first, self.last = bounds

    @classmethod
    def for_seconds(cls, window: Window, first: str, last: str) -> WindowFilter:
        """The filter of the whole seconds ``[first, last]`` of ``window`` (a slice of it)."""
        start = max(window.start, parse_instant(first, "first"))
        end = min(window.end, parse_instant(last, "last") + dt.timedelta(seconds=1))
        return cls(Window(start, end), (first, last))

    def shrink_to(self, last: str) -> None:
        """End the window at the whole second ``last`` (inclusive), as after a split."""
        self.last = last
        end = min(self.window.end, parse_instant(last, "last") + dt.timedelta(seconds=1))
        self.window = Window(self.window.start, end)

    def second_of(self, created_at: str) -> str | None:
        """The event's whole second when it lies in the window, else None."""
        if codec.is_canonical_utc(created_at):
            return created_at if self.first <= created_at <= self.last else None
        instant = parse_instant(created_at, "createdAt")
        if not self.window.start <= instant < self.window.end:
            return None
        return format_api_date(instant.replace(microsecond=0))


def event_id(event: dict[str, Any]) -> str:
    """The identity of an event for de-duplication: its type and id, else the whole document."""
    body = event.get("event")
    if isinstance(body, dict) and body.get("id"):
        return f"{body.get('type')}:{body['id']}"
    return json.dumps(event, sort_keys=True, default=str)


def _created_at(event: dict[str, Any]) -> str:
    when = event.get("when")
    created = when.get("createdAt") if isinstance(when, dict) else None
    if not isinstance(created, str):
        raise Cloud4WiApiError(
            f"The API returned an event without when.createdAt (event id {event_id(event)})."
        )
    return created


class Delivery:
    """
    Yields the new, in-window events of each page, as dicts or as JSON lines.

    :param window: which events belong to the pull.
    :param cursor: the pull's time cursor.
    :param stats: counters to update.
    :param log: where out-of-order events are reported.
    :param label: names the pull in errors (organization and window).
    """

    def __init__(
        self, window: WindowFilter, cursor: TimeCursor, stats: PullStats, log: Log, label: str = "pull"
    ) -> None:
        self.label = label
        self.window = window
        self.cursor = cursor
        self.stats = stats
        self.log = log

    def page(self, events: list[Any], *, lines: bool) -> Iterator[Any]:
        """The events of one page that are new and in the window (as lines with ``lines``)."""
        if isinstance(events, codec.RawEvents):
            return self._raw_page(events)
        return self._parsed_page(events, lines)

    def block(self, events: list[Any]) -> bytes:
        """
        The events of one page that are new and in the window, as one block of JSON lines.

        Each line ends with a line break; a page with nothing new gives ``b""``. The same events
        as :meth:`page` gives with ``lines``, joined once per page instead of handed on one by one.
        """
        kept: list[Any] | None = None
        if isinstance(events, codec.RawEvents) and events.usual_keys is not None:
            kept = self._usual_page(events, events.usual_keys)
        if kept is None:
            kept = list(self.page(events, lines=True))
        if not kept:
            return b""
        kept.append(b"")
        return b"\n".join(kept)

    def _usual_page(self, events: codec.RawEvents, usual: codec.UsualKeys) -> list[Any] | None:
        """
        The new events of a page whose keys are all usual, decided for the page at once.

        Applies when the page is sorted by time and lies in the window, as the API sends it: the
        events after the cursor's second are then all new unless two share an id, so they need no
        test one by one. The few at the cursor's second take the usual rules. None when the page
        is not like that (the caller then takes each event on its own).
        """
        keys, created = usual.events, usual.created
        if not created:
            return []
        if created[0] < self.window.first or created[-1] > self.window.last or created != sorted(created):
            return None
        cursor = self.cursor
        after_cursor = bisect.bisect_right(created, cursor.second)
        later = keys[after_cursor:]
        if len(later) > MAX_EVENTS_AT_ONE_SECOND:
            return None  # the rules one by one stop a server that invents ids at one second
        if len({key.event.id for key in later}) != len(later):
            return None  # an id sent twice: only the rules one by one know which copy goes
        if any(":" in kind for kind in {key.event.type for key in later}):
            return None  # "type:id" could then name two events the same, as the cursor sees them
        kept = list(self._raw_page(codec.RawEvents(events[:after_cursor]))) if after_cursor else []
        if later:
            last = created[-1]
            at_last = bisect.bisect_left(created, last, after_cursor)
            cursor.second = last
            cursor.ids_at_second = {f"{key.event.type}:{key.event.id}" for key in keys[at_last:]}
            self.stats.events += len(later)
            kept += events[after_cursor:]
        return kept

    def _parsed_page(self, events: list[Any], lines: bool) -> Iterator[Any]:
        for event in events:
            if not isinstance(event, dict):
                where = f"Events page {self.stats.pages}" if self.stats.pages else "The events reply"
                raise Cloud4WiApiError(
                    f"{where} holds an event that is not a JSON object: {codec.excerpt(codec.dumps(event))}"
                )
            second = self.window.second_of(_created_at(event))
            if second is None:
                self.stats.outside_window_dropped += 1
            elif self._is_new(second, event_id(event)):
                yield codec.dumps(event) if lines else event

    def _raw_page(self, events: codec.RawEvents) -> Iterator[bytes]:
        """
        The same rules on raw slices, deciding on the three fields decoded from each.

        This loop runs once per event of the transfers' pull, so the usual case is written out
        inline (names bound locally, the cursor's common moves done here): each call saved is
        about a tenth of a second per million events.
        """
        decode, invalid = codec.event_keys_decoder()
        first, last = self.window.first, self.window.last
        cursor, stats = self.cursor, self.stats
        rewrite = events.multiline
        for raw in events:
            try:
                keys = decode(raw)
            except invalid:  # e.g. "event" or "when" not an object
                keys = None
            body = keys.event if keys is not None else None
            when = keys.when if keys is not None else None
            created = when.createdAt if when is not None else None
            if not (
                isinstance(created, str)
                and len(created) == 20
                and created[19] == "Z"
                and body is not None
                and isinstance(body.id, str)
                and body.id
                and isinstance(body.type, str)
            ):  # anything unusual takes the full parse and the general rules (and their errors)
                yield from self._parsed_page([codec.loads(bytes(raw))], lines=True)
                continue
            if not first <= created <= last:
                stats.outside_window_dropped += 1
                continue
            identity = f"{body.type}:{body.id}"
            if created > cursor.second:
                cursor.second = created
                cursor.ids_at_second = {identity}
                stats.events += 1
            elif not self._is_new(created, identity):
                continue
            yield codec.dumps(codec.loads(bytes(raw))) if rewrite else bytes(raw)

    def _is_new(self, second: str, identity: str) -> bool:
        verdict = self.cursor.accept(second, identity)
        if verdict is Verdict.NEW:
            self.stats.events += 1
            if len(self.cursor.ids_at_second) > MAX_EVENTS_AT_ONE_SECOND:
                raise Cloud4WiApiError(
                    f"Cloud4Wi {self.label}: more than {MAX_EVENTS_AT_ONE_SECOND} distinct events share the "
                    f"second {second}; the API keeps sending new ids without moving on, so the pull stops "
                    "here."
                )
            return True
        if verdict is Verdict.OLDER:
            self.stats.out_of_order_dropped += 1
            self.log.warning(
                "Cloud4Wi sent event %s of %s after events of %s although pages are sorted by time; it is "
                "taken as already delivered and dropped.",
                identity[:80],
                second,
                self.cursor.second,
            )
        else:
            self.stats.duplicates_dropped += 1
        return False


class Scroll:
    """
    The scroll in progress, if any: a continuation is handed out once and never sent again.

    :param enabled: whether the endpoint scrolls (the per-contact one does not).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._scroll_id: str | None = None

    def take(self) -> str | None:
        """The scroll id to continue with, or None for a fresh query; forgotten until :meth:`keep`."""
        sent, self._scroll_id = self._scroll_id, None
        return sent

    def keep(self, page: dict[str, Any], sent: str | None) -> None:
        """Remember where to continue after ``page`` arrived in reply to ``sent``."""
        self._scroll_id = (page.get("scrollId") or sent) if self.enabled else None


class Progress:
    """
    Logs a long pull's progress now and then, and stops one that goes round without progress.

    :param label: names the pull in messages (organization and window).
    :param every_seconds: how often progress is logged at INFO.
    """

    def __init__(self, label: str, stats: PullStats, log: Log, every_seconds: float) -> None:
        self.label = label
        self.stats = stats
        self.log = log
        self.every_seconds = every_seconds
        self._last_log = time.monotonic()
        self._idle_pages = 0

    def page_arrived(self) -> None:
        """Count a page and log progress when it is due."""
        self.stats.pages += 1
        now = time.monotonic()
        if now - self._last_log >= self.every_seconds:
            self._last_log = now
            self.log.info(
                "Cloud4Wi %s: %d pages, %d events so far, %.0f events/s.",
                self.label,
                self.stats.pages,
                self.stats.events,
                self.stats.events_per_second,
            )

    def page_delivered(self, new_events: int, cursor_moved: bool) -> None:
        """Fail once too many pages in a row brought nothing new and left the cursor where it was."""
        self._idle_pages = 0 if new_events or cursor_moved else self._idle_pages + 1
        if self._idle_pages >= MAX_PAGES_WITHOUT_PROGRESS:
            raise Cloud4WiApiError(
                f"Cloud4Wi {self.label}: {self._idle_pages} pages in a row brought no new event "
                f"({self.stats.events} delivered, {self.stats.duplicates_dropped} duplicates so far); the "
                "server keeps sending the same events, so the pull stops instead of looping."
            )
