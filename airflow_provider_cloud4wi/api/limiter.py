"""One limit on the requests a task has in flight: lowered by rate limits, raised by success."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from airflow_provider_cloud4wi.api.logs import Log

#: Successful requests in a row, per slot in force, before one more slot is allowed.
_SUCCESSES_PER_RAISE = 10
#: How many times as many successes it takes to try again a limit the server refused.
_SUCCESSES_PER_RETRIED_RAISE = 10 * _SUCCESSES_PER_RAISE
#: Settings of the limit whose requests are still counted; a request outlives so many changes
#: only on a pull that is changing its limit all the time, and then counts as sent under a full one.
_SETTINGS_KEPT = 16


@dataclass(frozen=True)
class Slot:
    """
    One request's hold on the limiter.

    :param setting: which setting of the limit the request was sent under.
    """

    setting: int


class AdaptiveLimiter:
    """
    How many requests may run at once: lowered on a 429, raised by one after sustained success.

    The requests sent under one setting of the limit are a generation: when the server starts
    refusing, the generation in flight is refused together. A 429 lowers the limit to what that
    generation shows the server takes at once: the most of it in flight together, less those
    refused so far. The first 429 of the limit in force lowers it by one at least and to half
    at most (or back to the limit that held, right after a raise); later 429s of the same
    generation lower it further, so a burst against a server that takes k at once ends at k
    rather than at a half of a half. A limit the server refused is tried again only after ten
    times as many successes. A ``Retry-After`` holds every request back, not only the one that
    was told; waiting requests are let through in the order they asked.

    :param maximum: the most requests at once (the pull's ``max_concurrency``).
    :param log: where each change of the limit is reported.
    """

    def __init__(self, maximum: int, log: Log) -> None:
        if maximum < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {maximum}.")
        self.maximum = maximum
        self.limit = maximum
        self.log = log
        self._in_flight = 0
        self._successes = 0
        self._not_before = 0.0
        self._setting = 0
        self._raised_from: int | None = None
        self._refused = maximum + 1
        #: Per setting: the most requests in flight while one of it was sent, and its 429s.
        self._crowds: dict[int, int] = {}
        self._refusals: dict[int, int] = {}
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """Hold one of the slots in force for the duration of a request."""
        turn = object()
        with self._changed:
            # Requests go in the order they asked: the pull's workers ask in the order of their
            # slices, so the slice the consumer waits for is not overtaken by later ones.
            self._queue.append(turn)
            try:
                while True:
                    wait = self._not_before - time.monotonic()
                    if wait <= 0 and self._in_flight < self.limit and self._queue[0] is turn:
                        break
                    self._changed.wait(timeout=wait if wait > 0 else None)
            finally:
                self._queue.remove(turn)
                self._changed.notify_all()
            self._in_flight += 1
            self._crowds[self._setting] = max(self._crowds.get(self._setting, 0), self._in_flight)
            held = Slot(self._setting)
        try:
            yield held
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def rate_limited(self, retry_after: float | None, held: Slot) -> None:
        """A 429 arrived for the request of ``held``: lower the limit, hold back for ``retry_after`` s."""
        with self._changed:
            self._successes = 0
            if retry_after:
                self._not_before = max(self._not_before, time.monotonic() + retry_after)
            refusals = self._refusals[held.setting] = self._refusals.get(held.setting, 0) + 1
            took = self._crowds.get(held.setting, self.maximum) - refusals
            if held.setting == self._setting:
                halved = self._raised_from if self._raised_from is not None else self.limit // 2
                took = max(took, halved)
            lowered = max(1, min(took, self.limit - 1))
            if lowered >= self.limit:
                return  # already at one request at a time, or lowered further by another 429
            self._refused = self.limit
            self.limit = lowered
            self._change(None)
            self.log.warning(
                "Cloud4Wi rate limited the pull (HTTP 429): concurrency lowered to %d of %d.",
                self.limit,
                self.maximum,
            )

    def succeeded(self) -> None:
        """A request went through: after enough in a row, allow one more at once."""
        with self._changed:
            self._successes += 1
            if self.limit >= self.maximum:
                return
            retried = self.limit + 1 >= self._refused
            per_slot = _SUCCESSES_PER_RETRIED_RAISE if retried else _SUCCESSES_PER_RAISE
            if self._successes >= per_slot * self.limit:
                self._successes = 0
                self.limit += 1
                self._change(self.limit - 1)
                self.log.info("Cloud4Wi pull concurrency raised to %d of %d.", self.limit, self.maximum)
                self._changed.notify_all()

    def _change(self, raised_from: int | None) -> None:
        self._setting += 1
        self._raised_from = raised_from
        for old in [setting for setting in self._crowds if setting <= self._setting - _SETTINGS_KEPT]:
            del self._crowds[old]
            self._refusals.pop(old, None)
