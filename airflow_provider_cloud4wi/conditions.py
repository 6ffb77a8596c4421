"""The wait condition shared by :class:`Cloud4WiEventsSensor` and :class:`Cloud4WiEventsTrigger`.

Both ask the same question, "does the API hold the window's events yet?", one from a worker and
one from the triggerer's event loop. Keeping the answer here means the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_cloud4wi.api.protocol import MAX_PAGE_SIZE, normalize_event_types
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook, Cloud4WiTransientError
from airflow_provider_cloud4wi.windows import Window

#: Attempts one check may make: enough to ride out a blip, few enough to keep a poke short.
CHECK_MAX_ATTEMPTS = 3

#: Hook settings for checks, so that one check stays well under a typical poke interval.
CHECK_HOOK_KWARGS: dict[str, Any] = {
    "max_attempts": CHECK_MAX_ATTEMPTS,
    "max_retry_seconds": 60.0,
    "retry_after_cap": 30.0,
}


class _Log(Protocol):
    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


def check_min_events(min_events: Any) -> int:
    """
    Return ``min_events`` when it is a whole number the API can count in one request.

    :param min_events: how many events must be present for the wait to end.
    """
    whole = isinstance(min_events, int) and not isinstance(min_events, bool)
    if not whole or not 1 <= min_events <= MAX_PAGE_SIZE:
        raise ValueError(f"min_events must be an integer from 1 to {MAX_PAGE_SIZE}, not {min_events!r}.")
    return min_events


def check_settle_delay(settle_delay: dt.timedelta | float) -> dt.timedelta:
    """
    Return ``settle_delay`` as a non-negative :class:`~datetime.timedelta`.

    :param settle_delay: a timedelta, or a number of seconds.
    """
    if isinstance(settle_delay, bool) or not isinstance(settle_delay, (dt.timedelta, int, float)):
        raise TypeError(f"settle_delay must be a timedelta or seconds, not {type(settle_delay).__name__}.")
    delay = settle_delay if isinstance(settle_delay, dt.timedelta) else dt.timedelta(seconds=settle_delay)
    if delay < dt.timedelta(0):
        raise ValueError(f"settle_delay must not be negative, not {delay}.")
    return delay


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _event_types(event_types: Sequence[str] | str | None) -> tuple[str, ...] | None:
    joined = normalize_event_types(event_types)
    return tuple(joined.split(",")) if joined else None


@dataclass(frozen=True)
class EventsCondition:
    """
    At least ``min_events`` events exist in ``window``, and the window has had time to settle.

    :param window: the half-open interval of creation times to wait for; not zero-width.
    :param min_events: how many events end the wait (1 to 10000).
    :param settle_delay: how long after the window's end the wait may end at the earliest.
    :param event_types: count only these types (None for all).
    :param customer_id: count only this contact's events.
    :param organization_id: the ``cid``; None means the connection's.
    """

    window: Window
    min_events: int = 1
    settle_delay: dt.timedelta = dt.timedelta(0)
    event_types: tuple[str, ...] | None = None
    customer_id: str | None = None
    organization_id: str | None = None

    @classmethod
    def from_values(
        cls,
        *,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        min_events: int = 1,
        settle_delay: dt.timedelta | float = dt.timedelta(0),
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
    ) -> EventsCondition:
        """
        Validate rendered task arguments into a condition, before any request is sent.

        Raises :class:`~airflow_provider_cloud4wi.windows.ZeroWidthWindowError` for a zero-width
        window and :class:`ValueError` (or :class:`TypeError`) for any other bad value.

        :param window_start: first instant of the window (aware datetime or ISO 8601 string).
        :param window_end: first instant after the window.
        :param min_events: how many events end the wait.
        :param settle_delay: a timedelta or seconds to wait past the window's end.
        :param event_types: a list of types, or one comma-separated string.
        :param customer_id: count only this contact's events.
        :param organization_id: the ``cid``; None or empty means the connection's.
        """
        return cls(
            window=Window.parse(window_start, window_end).require_width(),
            min_events=check_min_events(min_events),
            settle_delay=check_settle_delay(settle_delay),
            event_types=_event_types(event_types),
            customer_id=_optional_text(customer_id),
            organization_id=_optional_text(organization_id),
        )

    @property
    def settles_at(self) -> dt.datetime:
        """The earliest instant at which the wait may end."""
        return self.window.end + self.settle_delay

    def seconds_until_settled(self, now: dt.datetime | None = None) -> float:
        """
        Seconds left before :attr:`settles_at` (0 once it has passed).

        :param now: the current instant; defaults to the wall clock.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        return max(0.0, (self.settles_at - now).total_seconds())

    def check(self, hook: Cloud4WiHook, log: _Log) -> int | None:
        """
        Poke once: return the events counted (at most ``min_events``) once enough are there, else None.

        Sends no request before the window has settled, and at most one cheap request after
        (plus the hook's retries). A transient failure is logged and counts as "not yet"; any
        other API error is raised.

        :param hook: the hook to ask, already bound to a connection.
        :param log: where to say why the wait goes on.
        """
        wait = self.seconds_until_settled()
        if wait > 0:
            log.info(
                "Waiting for window %s to settle: no check before %s (%.0fs from now).",
                self.window,
                self.settles_at.isoformat(),
                wait,
            )
            return None
        try:
            count = hook.count_events(
                self.window.start,
                self.window.end,
                limit=self.min_events,
                event_types=self.event_types,
                customer_id=self.customer_id,
                organization_id=self.organization_id,
                max_attempts=CHECK_MAX_ATTEMPTS,
            )
        except Cloud4WiTransientError as err:
            log.warning("Cloud4Wi could not be asked this time (%s); checking again at the next poke.", err)
            return None
        if count < self.min_events:
            log.info("Window %s holds %d of the %d events awaited.", self.window, count, self.min_events)
            return None
        log.info("Window %s holds at least %d events.", self.window, count)
        return count
