"""One limit on the requests a task has in flight: lowered by rate limits, raised by success."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from airflow_provider_cloud4wi.api.logs import Log

#: Successful requests in a row, per slot in force, before one more slot is allowed.
_SUCCESSES_PER_RAISE = 10
#: How many times as many successes it takes to try again a limit the server refused.
_SUCCESSES_PER_RETRIED_RAISE = 10 * _SUCCESSES_PER_RAISE


@dataclass(frozen=True)
class Slot:
    """One request's hold on the limiter: which setting of the limit it was sent under."""

    setting: int


class AdaptiveLimiter:
    """
    How many requests may run at once: lowered on a 429, raised by one after sustained success.

    A 429 halves the limit, once for all the requests sent under the same limit: the requests in
    flight when the server starts refusing are refused together and say the same thing. A 429
    right after a raise steps back to the limit that held, and that higher limit is tried again
    only after ten times as many successes. A ``Retry-After`` holds every request back, not only
    the one that was told.

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
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """Hold one of the slots in force for the duration of a request."""
        with self._changed:
            while True:
                wait = self._not_before - time.monotonic()
                if wait <= 0 and self._in_flight < self.limit:
                    break
                self._changed.wait(timeout=wait if wait > 0 else None)
            self._in_flight += 1
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
            if held.setting != self._setting or self.limit == 1:
                return  # sent under a limit already lowered
            self._refused = self.limit
            if self._raised_from is not None:
                self.limit = self._raised_from
            else:
                self.limit = max(1, self.limit // 2)
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
