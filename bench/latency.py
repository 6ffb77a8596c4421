"""The latency scenario (issue #11): every API request answered after N ms, maybe a limit on requests at once.

``python -m bench --latency-ms 250 --concurrency 1,2,4,8,16`` runs A at each ``max_concurrency``
(rows ``A@1`` ...), C (the bare sequential scroll; ``C_seq`` is its pull plus one upload of as many
bytes as A's object) and D (dlt), against a simulator started with ``--latency-ms 250``.
``--server-limit 3`` also starts it with ``--max-concurrent-requests 3`` (429 with ``Retry-After``
beyond 3 requests in flight). After every A run the object is read back: its event count must be
the window's and its event ids unique (exactly once). The simulator's counters are reset before
each run and read after it (requests, 429s it sent, most requests in flight, cache misses).

Each scenario (latency, limit) is a section of bench/results-latency.md; a new run of the same
scenario replaces its own section and leaves the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import WORK_DIR, ChildResult, api_params, window_for

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16)
DEFAULT_VARIANTS = ("A", "C", "D")
#: The simulator's Retry-After on a refused request (its default, ``retry_after`` = 1).
RETRY_AFTER_SECONDS = 1
_EVENT_ID = re.compile(rb'"event":\{"type":"[^"]*","id":"([^"]+)"')
_SECTION = re.compile(r"^<!-- scenario (?P<key>[^>]*) -->$", re.MULTILINE)
_TITLE = (
    "# Benchmark: the latency scenarios (issue #11)\n\n"
    "Written by `python -m bench --latency-ms N [--server-limit K] --concurrency ...` (see "
    "[README.md](README.md)); each section is one scenario, replaced by the next run of that "
    "scenario. The no-latency benchmark is [results.md](results.md).\n"
)


# ----------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Scenario:
    """What the simulator is started with, and which ``max_concurrency`` values A runs at."""

    latency_ms: float
    server_limit: int
    concurrency: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"latency-ms={self.latency_ms:g} server-limit={self.server_limit}"

    @property
    def title(self) -> str:
        limit = (
            f"server limited to {self.server_limit} requests at once (429, Retry-After "
            f"{RETRY_AFTER_SECONDS} s, beyond)"
            if self.server_limit
            else "no server limit"
        )
        return f"{self.latency_ms:g} ms per request, {limit}"

    def simulator_flags(self) -> list[str]:
        flags = ["--latency-ms", f"{self.latency_ms:g}"] if self.latency_ms else []
        if self.server_limit:
            flags += ["--max-concurrent-requests", str(self.server_limit)]
        return flags

    @property
    def goal_concurrency(self) -> int:
        """The A row the ratio goal is about: 8 without a limit (when run), else the largest asked."""
        if not self.server_limit and 8 in self.concurrency:
            return 8
        return max(self.concurrency)

    @property
    def goal_ratio(self) -> float:
        return 0.6 if self.server_limit else 0.3


def a_label(k: int) -> str:
    return f"A@{k}"


def file_label(label: str) -> str:
    """The label as a log-file and S3-key name (``A@8`` -> ``A-c8``)."""
    return label.replace("@", "-c")


@dataclass
class ServerStats:
    """The simulator's counters over one run."""

    requests: int = 0
    refused: int = 0
    max_in_flight: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    @classmethod
    def of(cls, stats: dict[str, Any]) -> ServerStats:
        requests = stats.get("requests", {})
        cache = stats.get("page_cache", {})
        return cls(
            requests=sum(n for name, n in requests.items() if name not in ("control", "unknown")),
            refused=int(stats.get("faults", {}).get("concurrency_limit", 0)),
            max_in_flight=int(stats.get("max_requests_in_flight", 0)),
            cache_hits=int(cache.get("hits", 0)),
            cache_misses=int(cache.get("misses", 0)),
        )


@dataclass
class Check:
    """A's object read back: lines, distinct event ids, and whether it holds the window exactly once."""

    lines: int
    distinct: int
    expected: int

    @property
    def ok(self) -> bool:
        return self.lines == self.distinct == self.expected

    def text(self) -> str:
        if self.ok:
            return "ok"
        return f"NO ({self.lines:,} lines, {self.distinct:,} ids, {self.expected:,} expected)"


@dataclass
class Run:
    """One measured child: its result (None when it failed), the server's view, the object check."""

    result: ChildResult | None
    server: ServerStats
    check: Check | None = None
    error: str = ""
    #: urllib3's "Connection pool is full, discarding connection" warnings in the child's log.
    pool_full: int = 0


@dataclass
class Warm:
    events: int
    pages: int
    read: int
    seconds: float
    a_seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------- servers
def _control(sim_url: str, action: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(
        sim_url + "/_simulator/" + action, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def _reset(sim_url: str) -> None:
    _control(sim_url, "stats/reset", "POST")


def check_object(moto_url: str, uris: list[str], expected: int) -> Check:
    """Read A's objects back from moto: count the lines and the distinct ``event.id`` values."""
    try:
        from isal import igzip as gzip  # the same format, faster (the bench installs isal)
    except ImportError:
        import gzip  # type: ignore[no-redef]

    from bench.servers import s3_client

    client = s3_client(moto_url)
    lines, ids = 0, set()
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with gzip.GzipFile(fileobj=body) as stream:
            for line in stream:
                lines += 1
                match = _EVENT_ID.search(line)
                if match:
                    ids.add(match.group(1))
    return Check(lines=lines, distinct=len(ids), expected=expected)


# -------------------------------------------------------------------------------------- running
class _Runner:
    """Runs the children of one scenario against the running servers and keeps what they reported."""

    def __init__(self, scenario: Scenario, servers: Any, env: dict[str, str], dlt_python: str | None) -> None:
        self.scenario = scenario
        self.servers = servers
        self.env = env
        self.dlt_python = dlt_python
        self.runs: dict[tuple[str, int], list[Run]] = {}
        self.warm: dict[int, Warm] = {}
        self.notes: list[str] = []

    def child(self, label: str, size: int, *, name: str | None = None, upload: int = 0) -> ChildResult:
        from bench.main import run_child

        variant = label[0]
        extra = ["--max-concurrency", label[2:], "--observe"] if label.startswith("A@") else []
        return run_child(
            variant,
            size,
            python=self.dlt_python if variant == "D" and self.dlt_python else sys.executable,
            env=self.env,
            sim_url=self.servers.simulator_url,
            moto_url=self.servers.moto_url,
            upload_size=upload,
            label=name or file_label(label),
            extra=extra,
        )

    # -- warm-up ------------------------------------------------------------------------------
    def warm_up(self, sizes: list[int], a_labels: list[str]) -> None:
        """
        Fill the simulator's page cache with every query the timed runs send.

        The sequential scroll (C, D and A@1 send it) is pulled in a thread while each sliced A
        (whose slices are other queries) runs once, untimed; under a server limit one at a time,
        since the bare pull does not retry a 429.
        """
        sliced = [label for label in a_labels if label != a_label(1)]
        for size in sizes:
            thread = threading.Thread(target=self._warm_scroll, args=(size,))
            thread.start()
            if self.scenario.server_limit:
                thread.join()
            seconds = {label: self._warm_a(label, size) for label in sliced}
            thread.join()
            self.warm[size].a_seconds = seconds
            print(f"warm {size}: {self.warm[size]}", flush=True)
        _reset(self.servers.simulator_url)

    def _warm_scroll(self, size: int) -> None:
        from bench.variant_c import raw_pull

        started = time.perf_counter()
        events, pages, read = raw_pull(self.servers.simulator_url, api_params(*window_for(size)))
        self.warm[size] = Warm(events, pages, read, time.perf_counter() - started)

    def _warm_a(self, label: str, size: int) -> float:
        """One untimed run of a sliced A row; a failure is noted (the timed runs will show it)."""
        try:
            return self.child(label, size, name="warm-" + file_label(label)).wall_seconds
        except RuntimeError as exc:
            self.notes.append(f"warm-up of {label} at {size:,} failed: {exc}")
            return math.nan

    # -- timed runs ---------------------------------------------------------------------------
    def measure(self, label: str, size: int) -> Run:
        """One timed child, the server's counters around it, and (for A) its object read back."""
        upload = self.a_bytes(size) if label == "C" else 0
        _reset(self.servers.simulator_url)
        try:
            result: ChildResult | None = self.child(label, size, upload=upload)
            error = ""
        except RuntimeError as exc:
            result, error = None, str(exc)
        server = ServerStats.of(_control(self.servers.simulator_url, "stats"))
        run = Run(result, server, error=error, pool_full=_pool_full(file_label(label), size))
        if result is not None and label.startswith("A@"):
            expected = self.warm[size].events
            run.check = check_object(self.servers.moto_url, result.detail.get("objects", []), expected)
        self.runs.setdefault((label, size), []).append(run)
        _print_run(label, size, run)
        return run

    def a_bytes(self, size: int) -> int:
        """The size of A's object at this window (every A row writes the same bytes)."""
        for (label, at), runs in self.runs.items():
            if at == size and label.startswith("A@"):
                for run in runs:
                    if run.result is not None:
                        return run.result.bytes_uploaded
        return 0

    def done(self) -> dict[tuple[str, int], list[ChildResult]]:
        """The successful results, as the no-latency orchestrator keeps them (for its budget)."""
        return {
            key: [run.result for run in runs if run.result is not None] for key, runs in self.runs.items()
        }


def _pool_full(name: str, size: int) -> int:
    """How often the child's HTTP pool dropped a connection (more threads than pooled connections)."""
    log = WORK_DIR / "logs" / f"{name}-{size}.log"
    try:
        return log.read_text(errors="replace").count("Connection pool is full")
    except OSError:
        return 0


def _print_run(label: str, size: int, run: Run) -> None:
    s = run.server
    if run.result is None:
        print(f"{size:>8} {label:<6} FAILED: {run.error}", flush=True)
        return
    r = run.result
    check = f" exactly-once {run.check.text()}" if run.check else ""
    print(
        f"{size:>8} {label:<6} {r.wall_seconds:7.2f}s peak RSS {r.peak_rss_mb:5.0f} MB "
        f"CPU {r.cpu_seconds:5.1f}s "
        f"requests {s.requests} 429s {s.refused} max in flight {s.max_in_flight} "
        f"cache misses {s.cache_misses} pool full {run.pool_full}{check}",
        flush=True,
    )


@dataclass(frozen=True)
class _Budget:
    """dlt's runs at the largest window stop once the projected total would exceed ``seconds``."""

    seconds: float
    clock: float
    labels: list[str]
    sizes: list[int]
    runs: int

    def reason_to_skip(self, runner: _Runner, size: int, index: int) -> str:
        """Why D's run ``index`` at ``size`` is skipped, or '' to run it."""
        from bench.main import _projected

        done = runner.done()
        if size != self.sizes[-1] or not done.get(("D", size)):
            return ""
        remaining = _projected(done, self.labels, self.sizes, size, index, self.runs, "D")
        spent = time.perf_counter() - self.clock
        if spent + remaining <= self.seconds:
            return ""
        return (
            f"D at {size:,}: run {index + 1} of {self.runs} skipped to keep the scenario under "
            f"{self.seconds / 60:g} minutes ({spent / 60:.1f} spent, {remaining / 60:.1f} projected)"
        )


def _measure_all(runner: _Runner, budget: _Budget) -> list[str]:
    """Every timed run, round by round (each round runs every row once); returns the skips."""
    skipped = []
    for size in budget.sizes:
        for index in range(budget.runs):
            for label in budget.labels:
                reason = budget.reason_to_skip(runner, size, index) if label == "D" else ""
                if reason:
                    skipped.append(reason)
                else:
                    runner.measure(label, size)
    return skipped


def run(args: argparse.Namespace, command: str) -> int:
    """The ``python -m bench --latency-ms ...`` entry point."""
    from bench.main import _child_env, _load
    from bench.servers import running_servers

    scenario = Scenario(
        latency_ms=args.latency_ms,
        server_limit=args.server_limit,
        concurrency=tuple(_ints(args.concurrency) or DEFAULT_CONCURRENCY),
    )
    sizes = sorted(_ints(args.sizes))
    variants = [v for v in (args.variants or ",".join(DEFAULT_VARIANTS)).split(",") if v]
    started, clock, load_start = dt.datetime.now(dt.timezone.utc), time.perf_counter(), _load()
    dlt_python, dlt_info = _dlt(variants)
    a_labels = [a_label(k) for k in scenario.concurrency] if "A" in variants else []
    labels = a_labels + [v for v in ("C", "D") if v in variants and (v != "D" or dlt_python)]
    skipped = [f"D (dlt) did not run: {dlt_info}"] if "D" in variants and not dlt_python else []
    copies = 1 + sum(1 for k in scenario.concurrency if k > 1)
    with running_servers(
        max(sizes), WORK_DIR / "logs", simulator_flags=scenario.simulator_flags(), cache_copies=copies
    ) as servers:
        runner = _Runner(scenario, servers, _child_env(servers.simulator_url, servers.moto_url), dlt_python)
        runner.warm_up(sizes, a_labels)
        budget = _Budget(args.budget_minutes * 60, clock, labels, sizes, args.runs)
        skipped += _measure_all(runner, budget)
    from bench.latency_report import Report

    report = Report(
        scenario=scenario,
        command=command,
        started=started,
        elapsed=time.perf_counter() - clock,
        sizes=sizes,
        labels=labels,
        runner=runner,
        dlt_info=dlt_info,
        loads=(load_start, _load()),
        skipped=skipped,
    )
    output = args.output or Path(__file__).resolve().parent / "results-latency.md"
    text = report.render()
    write_section(output, scenario.key, text)
    print()
    print(text)
    print(f"written to {output} (section {scenario.key})")
    return 0


def _ints(text: str | None) -> list[int]:
    return [int(item) for item in (text or "").split(",") if item.strip()]


def _dlt(variants: Iterable[str]) -> tuple[str | None, str]:
    if "D" not in variants:
        return None, "not requested"
    from bench import dlt_env

    python, info = dlt_env.ensure()
    print(f"dlt: {info}", flush=True)
    return (str(python) if python else None), info


def write_section(path: Path, key: str, text: str) -> None:
    """Put ``text`` in ``path`` as the section of scenario ``key``, keeping the other scenarios'."""
    sections: dict[str, str] = {}
    if path.exists():
        existing = path.read_text()
        marks = list(_SECTION.finditer(existing))
        for mark, following in zip(marks, [*marks[1:], None], strict=True):
            end = following.start() if following else len(existing)
            sections[mark.group("key")] = existing[mark.end() : end].strip("\n")
    sections[key] = text.strip("\n")
    parts = [_TITLE] + [f"<!-- scenario {k} -->\n{sections[k]}\n" for k in sorted(sections, key=_order)]
    path.write_text("\n".join(parts))


def _order(key: str) -> tuple[float, ...]:
    """Sections by latency, then server limit (no limit first)."""
    return tuple(float(value) for value in re.findall(r"=([\d.]+)", key))


def median(values: Iterable[float]) -> float:
    items = [v for v in values if v == v]
    return statistics.median(items) if items else math.nan
