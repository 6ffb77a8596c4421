"""One limit on the requests a task has in flight: lowered by rate limits, raised by success."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_cloud4wi.api.logs import Log

#: Successful requests in a row, per slot in force, before one more slot is allowed.
_SUCCESSES_PER_RAISE = 10


class AdaptiveLimiter:
    """
    How many requests may run at once: halved on each 429, raised by one after sustained success.

    A ``Retry-After`` holds every request back, not only the one that was told.

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
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots in force for the duration of a request."""
        with self._changed:
            while True:
                wait = self._not_before - time.monotonic()
                if wait <= 0 and self._in_flight < self.limit:
                    break
                self._changed.wait(timeout=wait if wait > 0 else None)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def rate_limited(self, retry_after: float | None) -> None:
        """A 429 arrived: halve the limit and hold every request back for ``retry_after`` seconds."""
        with self._changed:
            self._successes = 0
            if retry_after:
                self._not_before = max(self._not_before, time.monotonic() + retry_after)
            if self.limit > 1:
                self.limit = max(1, self.limit // 2)
                self.log.warning(
                    "Cloud4Wi rate limited the pull (HTTP 429): concurrency lowered to %d of %d.",
                    self.limit,
                    self.maximum,
                )

    def succeeded(self) -> None:
        """A request went through: after enough in a row, allow one more at once."""
        with self._changed:
            self._successes += 1
            if self.limit < self.maximum and self._successes >= _SUCCESSES_PER_RAISE * self.limit:
                self._successes = 0
                self.limit += 1
                self.log.info("Cloud4Wi pull concurrency raised to %d of %d.", self.limit, self.maximum)
                self._changed.notify_all()
