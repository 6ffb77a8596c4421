"""What a sliced pull did inside A's child: each slice's pages and timing, and the limiter's changes.

Used by the latency scenario only (``python -m bench.child A --observe``): the bench wraps a few
methods of the pull's classes before the clock starts and reads what they saw after it stops. It
only looks; if the classes have changed shape, the detail is simply missing from the report.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any


class PullObserver:
    """Records slices (first, last, pages, events, start, end, seconds blocked) and limit changes."""

    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.slices: dict[int, dict[str, Any]] = {}
        self.limits: list[tuple[float, int]] = []
        self.rate_limited = 0
        self.installed: list[str] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.perf_counter() - self.origin

    def slice_record(self, piece: Any) -> dict[str, Any]:
        with self._lock:
            return self.slices.setdefault(id(piece), {"blocked": 0.0, "piece": piece})

    def install(self) -> None:
        """Wrap the slicer's and the limiter's methods (whichever exist)."""
        try:
            from airflow_provider_cloud4wi.api import parallel

            self._wrap_slicer(parallel.SlicedPull)
            self.installed.append("slices")
        except (ImportError, AttributeError):
            pass
        try:
            from airflow_provider_cloud4wi.api import limiter

            self._wrap_limiter(limiter.AdaptiveLimiter)
            self.installed.append("limiter")
        except (ImportError, AttributeError):
            pass

    def _wrap_slicer(self, cls: type) -> None:
        run, reserve = cls._run, cls._reserve  # type: ignore[attr-defined]
        observer = self

        @functools.wraps(run)
        def timed_run(self: Any, piece: Any) -> None:
            record = observer.slice_record(piece)
            record["start"] = observer.now()
            try:
                run(self, piece)
            finally:
                record["end"] = observer.now()

        @functools.wraps(reserve)
        def timed_reserve(self: Any, piece: Any) -> int:
            began = time.perf_counter()
            try:
                return int(reserve(self, piece))
            finally:
                record = observer.slice_record(piece)
                record["blocked"] += time.perf_counter() - began

        cls._run, cls._reserve = timed_run, timed_reserve  # type: ignore[attr-defined]

    def _wrap_limiter(self, cls: type) -> None:
        rate_limited, succeeded = cls.rate_limited, cls.succeeded  # type: ignore[attr-defined]
        observer = self

        @functools.wraps(rate_limited)
        def on_429(self: Any, retry_after: float | None, held: Any) -> None:
            before = self.limit
            rate_limited(self, retry_after, held)
            observer.rate_limited += 1
            observer.limit_changed(before, self.limit)

        @functools.wraps(succeeded)
        def on_success(self: Any) -> None:
            before = self.limit
            succeeded(self)
            observer.limit_changed(before, self.limit)

        cls.rate_limited, cls.succeeded = on_429, on_success  # type: ignore[attr-defined]

    def limit_changed(self, before: int, after: int) -> None:
        if before == after:
            return
        with self._lock:  # two threads may see the same change: keep it once
            if not self.limits or self.limits[-1][1] != after:
                self.limits.append((round(self.now(), 2), after))

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary: slices in time order, limit changes, 429s the client saw."""
        slices = []
        for record in self.slices.values():
            piece = record["piece"]
            stats = getattr(piece, "stats", None)
            slices.append(
                {
                    "first": getattr(piece, "first", "?"),
                    "last": getattr(piece, "last", "?"),
                    "pages": getattr(stats, "pages", 0),
                    "events": getattr(stats, "events", 0),
                    "start": round(record.get("start", float("nan")), 2),
                    "end": round(record.get("end", float("nan")), 2),
                    "blocked": round(record["blocked"], 2),
                }
            )
        slices.sort(key=lambda item: item["first"])
        return {
            "installed": self.installed,
            "slices": slices,
            "limit_changes": self.limits,
            "rate_limited": self.rate_limited,
        }
