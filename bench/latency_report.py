"""The latency scenario's section of bench/results-latency.md: medians, ratios, goals, pull detail."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sys
from dataclasses import dataclass
from typing import Any

from bench.common import EVENTS_PER_HOUR, PAGE_SIZE
from bench.latency import Run, Scenario, _Runner, a_label, median


def _size(size: int) -> str:
    from bench.main import _fmt_size

    return _fmt_size(size)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base == base and base > 0 and value == value else "-"


def _num(value: float, spec: str) -> str:
    """``value`` formatted, or '-' when there is none (nan)."""
    return format(value, spec) if value == value else "-"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _c_seq_wall(result: Any) -> float:
    """C's pull plus its upload of as many bytes as A's object (nan without that upload)."""
    phases = result.phases
    return phases["pull"] + phases["upload_small"] if "upload_small" in phases else math.nan


@dataclass
class Row:
    """One line of the results table: a label at a window, with how to read each run's wall."""

    name: str
    label: str
    size: int
    runs: list[Run]
    seq: bool = False  # the C_seq row: C's runs, pull + small upload
    small_bytes: int = 0  # C_seq: the upload's size (A's object)

    @property
    def ok(self) -> list[Run]:
        return [run for run in self.runs if run.result is not None]

    def walls(self) -> list[float]:
        return [_c_seq_wall(r.result) if self.seq else r.result.wall_seconds for r in self.ok]  # type: ignore[union-attr]

    @property
    def wall(self) -> float:
        return median(self.walls())

    def med(self, attr: str) -> float:
        return median(getattr(run.result, attr) for run in self.ok)

    def object_mb(self) -> float:
        if self.seq:
            return self.small_bytes / 1e6
        return self.med("bytes_uploaded") / 1e6

    def median_run(self) -> Run | None:
        """The run whose wall is the median one (the lower middle of an even count)."""
        ranked = sorted(zip(self.walls(), range(len(self.ok)), strict=True))
        return self.ok[ranked[(len(ranked) - 1) // 2][1]] if ranked else None


@dataclass
class Report:
    scenario: Scenario
    command: str
    started: dt.datetime
    elapsed: float
    sizes: list[int]
    labels: list[str]
    runner: _Runner
    dlt_info: str
    loads: tuple[str, str]
    skipped: list[str]

    # -- rows -------------------------------------------------------------------------------------
    def rows(self, size: int) -> list[Row]:
        runs = self.runner.runs
        found: list[Row] = []
        for label in self.labels:
            taken = runs.get((label, size), [])
            if not taken:
                continue
            small = self.runner.a_bytes(size)
            if label == "C" and small:
                found.append(Row("C_seq", label, size, taken, seq=True, small_bytes=small))
            found.append(Row(label, label, size, taken))
        return found

    def row(self, name: str, size: int) -> Row | None:
        return next((row for row in self.rows(size) if row.name == name), None)

    def wall(self, name: str, size: int) -> float:
        row = self.row(name, size)
        return row.wall if row else math.nan

    @property
    def a_names(self) -> list[str]:
        return [label for label in self.labels if label.startswith("A@")]

    # -- text -------------------------------------------------------------------------------------
    def render(self) -> str:
        lines = self._head() + self._setup() + self._results() + self._ratios() + self._goals()
        lines += self._pull_detail() + self._findings() + self._notes()
        return "\n".join(lines) + "\n"

    def _findings(self) -> list[str]:
        """The sentences of bench/latency_findings.py; a slip there must not cost the tables."""
        from bench.latency_findings import findings

        try:
            return findings(self)
        except Exception as exc:
            return ["### What stands in the way", "", f"(not derived: {exc!r})", ""]

    def _head(self) -> list[str]:
        from bench.main import _cpu_model, _memory_gib, _versions

        return [
            f"## {self.scenario.title}",
            "",
            f"Run on {self.started:%Y-%m-%d %H:%M} UTC, {self.elapsed / 60:.1f} minutes in all, with:",
            "",
            "```",
            self.command,
            "```",
            "",
            f"- Machine: {_cpu_model()}, {os.cpu_count()} cores; memory {_memory_gib()}; "
            f"{platform.system()} {platform.release()}; "
            f"Python {platform.python_version()} ({sys.executable})",
            f"- Packages: {_versions()}; dlt (own virtualenv): {self.dlt_info}",
            f"- Load average at start / end: {self.loads[0]} / {self.loads[1]} (a shared machine: the "
            "runs are interleaved round by round, so compare ratios)",
            "",
        ]

    def _setup(self) -> list[str]:
        s = self.scenario
        flags = " ".join(s.simulator_flags()) or "(none)"
        warm = "; ".join(
            f"{_size(size)}: {w.events:,} events, {w.pages} pages, {w.read / 1e6:.0f} MB sequentially in "
            f"{w.seconds:.1f}s"
            + "".join(f", {k} {v:.1f}s" if v == v else f", {k} failed" for k, v in w.a_seconds.items())
            for size, w in self.runner.warm.items()
        )
        return [
            "### Set-up",
            "",
            f"- Simulator (own process, {EVENTS_PER_HOUR:,} events per hour, page size {PAGE_SIZE:,}) "
            f"started with `{flags}`: every API request, login included, is answered after "
            f"{s.latency_ms:g} ms"
            + (
                f"; a request arriving while {s.server_limit} are in flight gets 429 with "
                f"`Retry-After: 1` (after the same delay)"
                if s.server_limit
                else ""
            )
            + ".",
            "- Page cache warmed before timing: the sequential scroll once (C, D and A@1 send its "
            "queries) and each sliced A row once, untimed (its slices are other queries). Warm-up: "
            + warm
            + ". The simulator's counters are reset before each timed run and read after it.",
            "- `A@k`: `Cloud4WiEventsToS3Operator(..., max_concurrency=k).execute({})`, gzip JSON Lines. "
            "After each run the data object is read back from moto: its lines must number the "
            "window's events and their `event.id` values must all differ (exactly once).",
            "- `C`: the bare sequential scroll with `requests` (bodies read and thrown away) plus an "
            "upload of as many bytes. `C_seq`: the same pull plus one upload of as many bytes as A's "
            "object, timed in the same child: the reference of the ratios.",
            "- `D`: dlt's `rest_api` source, sequential (as in results.md).",
            "",
        ]

    def _results(self) -> list[str]:
        lines = [
            "### Results (medians)",
            "",
            "| window | row | runs ok | wall s (min-max) | events/s | peak RSS MB | CPU s | object MB "
            "| API requests | 429s sent | max in flight | cache misses | exactly once |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for size in self.sizes:
            for row in self.rows(size):
                lines.append(self._result_line(row))
        return [*lines, ""]

    def _result_line(self, row: Row) -> str:
        walls = row.walls()
        warm = self.runner.warm.get(row.size)
        events = row.ok[0].result.events if row.ok else (warm.events if warm else 0)  # type: ignore[union-attr]
        span = f"{row.wall:.2f} ({min(walls):.2f}-{max(walls):.2f})" if walls else "-"
        rate = f"{events / row.wall:,.0f}" if walls else "-"
        servers = [run.server for run in row.runs]
        checks = [run.check for run in row.runs if run.check is not None]
        once = (
            f"{sum(c.ok for c in checks)}/{len(checks)} ok"
            if checks and all(c.ok for c in checks)
            else ("; ".join(c.text() for c in checks) or "-")
        )
        return (
            f"| {_size(row.size)} ({events:,} ev) | {row.name} | {len(row.ok)}/{len(row.runs)} | {span} "
            f"| {rate} | {_num(row.med('peak_rss_mb'), '.0f')} | {_num(row.med('cpu_seconds'), '.1f')} "
            f"| {_num(row.object_mb(), '.1f')} "
            f"| {'/'.join(str(s.requests) for s in servers)} | {'/'.join(str(s.refused) for s in servers)} "
            f"| {max(s.max_in_flight for s in servers)} | {'/'.join(str(s.cache_misses) for s in servers)} "
            f"| {once} |"
        )

    def _ratios(self) -> list[str]:
        lines = [
            "### Ratios (of median wall times; lower is better for A)",
            "",
            "| window | row | wall s | / C_seq | / C | / A@1 | / D |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size in self.sizes:
            for name in self.a_names:
                wall = self.wall(name, size)
                bases = [self.wall(other, size) for other in ("C_seq", "C", a_label(1), "D")]
                cells = " | ".join(_ratio(wall, base) for base in bases)
                lines.append(f"| {_size(size)} | {name} | {_num(wall, '.2f')} | {cells} |")
        return [*lines, ""]

    # -- goals ------------------------------------------------------------------------------------
    def _goals(self) -> list[str]:
        s, big = self.scenario, max(self.sizes)
        goal = a_label(s.goal_concurrency)
        ratio = self.wall(goal, big) / self.wall("C_seq", big) if self.row("C_seq", big) else math.nan
        lines = [
            f"### Goals (at {_size(big)})",
            "",
            "| goal | measured | verdict |",
            "| --- | --- | --- |",
            f"| {goal} / C_seq <= {s.goal_ratio} | {_num(ratio, '.2f')} | "
            f"{_verdict(ratio <= s.goal_ratio) if ratio == ratio else 'not run'} |",
        ]
        if not s.server_limit:
            shown = ", ".join(
                f"{n} {_ratio(self.wall(n, big), self.wall('C_seq', big))}" for n in self.a_names
            )
            lines.append(
                f"| A at {', '.join(str(k) for k in s.concurrency)} (A@k / C_seq) | {shown} | shown |"
            )
        lines += self._safety_goals(big)
        lines.append(self._dlt_goal())
        return [*lines, ""]

    def _safety_goals(self, big: int) -> list[str]:
        a_runs = [run for name in self.a_names for run in self.runner.runs.get((name, big), [])]
        failed = sum(run.result is None for run in a_runs)
        checks = [run.check for run in a_runs if run.check is not None]
        good = sum(check.ok for check in checks)
        lines = [
            f"| no failure (every A run) | {failed} of {len(a_runs)} failed | "
            f"{_verdict(failed == 0) if a_runs else 'not run'} |",
            f"| exactly once (count = window's, ids unique) | {good} of {len(checks)} objects | "
            f"{_verdict(good == len(checks) and failed == 0) if checks else 'not run'} |",
        ]
        if self.scenario.server_limit:
            most = max((run.server.max_in_flight for run in a_runs), default=0)
            refused = "/".join(str(run.server.refused) for run in a_runs)
            lines.append(
                f"| the server's limit held (for the record) | most in flight {most} of "
                f"{self.scenario.server_limit}; 429s sent per A run {refused} | - |"
            )
        return lines

    def _dlt_goal(self) -> str:
        ran = [(size, self.row("D", size)) for size in self.sizes if self.row("D", size)]
        if not ran:
            return "| D in the latency scenario | not run | - |"
        text = "; ".join(
            f"at {_size(size)}, {len(row.ok)} run(s), median {row.wall:.1f}s" for size, row in ran if row
        )
        return f"| D in the latency scenario | {text} | shown |"

    # -- pull detail ---------------------------------------------------------------------------------
    def _pull_detail(self) -> list[str]:
        big = max(self.sizes)
        lines = [
            f"### Pull detail ({_size(big)}, the median run of each row)",
            "",
            "The floor is the requests the run made times the latency, divided by the requests that may "
            "be in flight (k, or the server's limit if lower). Slices: the time slices the pull ended up "
            "with, their pages, when the first started and the last ended, and the seconds their workers "
            "spent waiting, before a request, for room in the shared buffer budget. Limiter: the "
            "client's changes of its limit (time since the clock started: new limit). Pool full: "
            "urllib3's \"Connection pool is full, discarding connection\" warnings in the run's log "
            "(a connection closed after its request).",
            "",
            "| row | wall s | requests | floor s | slices | pages per slice | slices from-to s | workers "
            "blocked s | limiter | 429s seen / sent | pool full |",
            "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- | --- | ---: |",
        ]
        for name in ["C_seq", *self.a_names]:
            row = self.row(name, big)
            run = row.median_run() if row else None
            if row and run:
                lines.append(self._detail_line(name, row, run))
        return [*lines, ""]

    def _detail_line(self, name: str, row: Row, run: Run) -> str:
        k = int(name[2:]) if name.startswith("A@") else 1
        if self.scenario.server_limit:
            k = min(k, self.scenario.server_limit)
        requests = run.server.requests
        floor = math.ceil(requests / k) * self.scenario.latency_ms / 1000
        pull: dict[str, Any] = run.result.detail.get("pull", {}) if run.result else {}
        slices = pull.get("slices", [])
        pages = [item["pages"] for item in slices]
        per_slice = (
            ", ".join(map(str, pages))
            if len(pages) <= 16
            else f"{min(pages)}-{max(pages)} (median {median(pages):.0f})"
        )
        span = (
            f"{min(item['start'] for item in slices):.1f}-{max(item['end'] for item in slices):.1f}"
            if slices
            else "-"
        )
        blocked = sum(item["blocked"] for item in slices)
        changes = pull.get("limit_changes", [])
        limiter = ", ".join(f"{t:.1f}s:{limit}" for t, limit in changes[:10])
        if len(changes) > 10:
            limiter += f" ... ({len(changes)} changes, last {changes[-1][1]})"
        wall = _c_seq_wall(run.result) if row.seq else run.result.wall_seconds  # type: ignore[union-attr]
        return (
            f"| {name} | {wall:.2f} | {requests} | {floor:.1f} | {len(slices) or '-'} | {per_slice or '-'} "
            f"| {span} | {blocked:.1f} | {limiter or '-'} | {pull.get('rate_limited', 0)} / "
            f"{run.server.refused} | {run.pool_full} |"
        )

    def _notes(self) -> list[str]:
        notes = sorted(
            {
                f"{label} at {_size(size)}: {run.result.note}"
                for (label, size), runs in self.runner.runs.items()
                for run in runs
                if run.result is not None and run.result.note
            }
        )
        failures = [
            f"{label} at {_size(size)} failed: {run.error}"
            for (label, size), runs in self.runner.runs.items()
            for run in runs
            if run.result is None
        ]
        items = notes + failures + self.runner.notes + self.skipped
        return ["### Notes", "", *[f"- {item}" for item in items], ""] if items else []
