"""What the orchestrator and every child share: the dataset, the windows, the result line.

Nothing here imports Airflow, requests or dlt: the dlt child runs in its own virtualenv, where
only the standard library and dlt's own dependencies are present.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"

#: 10,002 events an hour (a multiple of 3, as the simulator needs): windows of 1h, 10h and 100h
#: hold 10,002, 100,020 and 1,000,200 events.
EVENTS_PER_HOUR = 10_002
DATA_START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
PAGE_SIZE = 10_000
ORGANIZATION_ID = "155d60f21dc1938562900a0e201d54f6"
CLIENT_KEY = "sim-client-key"
CLIENT_SECRET = "sim-client-secret"
AWS_REGION = "us-east-1"
BUCKET = "cloud4wi-bench"
#: Bytes of one rendered event in the simulator's page cache (measured: ~530), with a margin.
CACHE_BYTES_PER_EVENT = 640

RESULT_PREFIX = "BENCH-RESULT "


def window_for(size: int) -> tuple[dt.datetime, dt.datetime]:
    """The window ``[start, end)`` holding about ``size`` events (whole seconds, from DATA_START)."""
    hours = size / EVENTS_PER_HOUR
    if hours >= 1 and abs(hours - round(hours)) < 0.01 * hours:
        hours = round(hours)  # 10,000 -> 1h (10,002 events), 100,000 -> 10h, 1,000,000 -> 100h
    return DATA_START, DATA_START + dt.timedelta(seconds=max(1, round(hours * 3600)))


def api_params(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """
    The first query of a pull, exactly as Cloud4WiHook sends it (inclusive whole-second bounds).

    Every variant sends these, so the simulator's page cache (keyed by the query's index range,
    position and size) serves all of them from memory.
    """
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    last = end - dt.timedelta(seconds=1)
    return {
        "dateStart": start.strftime(fmt),
        "dateEnd": last.strftime(fmt),
        "size": PAGE_SIZE,
        "sortBy": "utcTime",
        "sortReverse": "false",
        "enableScroll": "true",
    }


def events_path() -> str:
    return f"/v1/organizations/{ORGANIZATION_ID}/events"


def s3_key(variant: str, size: int) -> str:
    return f"bench/{variant}/events_{size}.jsonl.gz"


def peak_rss_mb() -> float:
    """Peak resident set of this process and of any child it waited for, in MiB (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def current_rss_mb() -> float:
    """The resident set right now, in MiB (from /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass
class ChildResult:
    """What one measured child run reports on its last stdout line."""

    variant: str
    size: int
    events: int
    bytes_uploaded: int
    wall_seconds: float
    peak_rss_mb: float
    rss_before_mb: float
    cpu_seconds: float
    note: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    #: Anything else a run reports (the latency scenario: A's object URIs, its slices, its limiter).
    detail: dict[str, Any] = field(default_factory=dict)

    def emit(self) -> None:
        sys.stdout.write(RESULT_PREFIX + json.dumps(asdict(self)) + "\n")
        sys.stdout.flush()

    @classmethod
    def parse(cls, stdout: str) -> ChildResult:
        for line in reversed(stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return cls(**json.loads(line[len(RESULT_PREFIX) :]))
        raise ValueError("the child printed no result line")


class Timer:
    """Wall and CPU seconds of the measured part of a child."""

    def __enter__(self) -> Timer:
        self.rss_before = current_rss_mb()
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self.cpu_started
