"""What the latency scenario's measurements say stands between A and its goal, in sentences.

Derived from the same runs as the tables (the median run of each A row at the largest window):
where the time went compared with the latency floor, when the slices ran and how long their workers
waited for the consumer, what the limiter did with the 429s, and the HTTP pool and memory by k.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from bench.latency import Run, median

if TYPE_CHECKING:
    from bench.latency_report import Report


def _pull(run: Run) -> dict[str, Any]:
    return run.result.detail.get("pull", {}) if run.result else {}


def _k(name: str, limit: int) -> int:
    k = int(name[2:])
    return min(k, limit) if limit else k


def findings(report: Report) -> list[str]:
    """The section's bullets; empty when there is no A row to talk about."""
    big = max(report.sizes)
    goal = f"A@{report.scenario.goal_concurrency}"
    row = report.row(goal, big)
    run = row.median_run() if row else None
    if row is None or run is None:
        return []
    items = [_time_spent(report, goal, run, big), _slices(report, goal, run)]
    items += [_limiter(report, goal, run), *_pool(report, big), _memory(report, big)]
    lines = [f"### What stands in the way (measured, {goal} at the largest window)", ""]
    return [*lines, *[f"- {item}" for item in items if item], ""]


def _time_spent(report: Report, goal: str, run: Run, big: int) -> str:
    s = report.scenario
    wall = run.result.wall_seconds if run.result else math.nan
    base = report.wall("C_seq", big)
    k = _k(goal, s.server_limit)
    floor = math.ceil(run.server.requests / k) * s.latency_ms / 1000
    ratio = f"{wall / base:.2f}" if base == base and base > 0 else "-"
    return (
        f"{goal} took {wall:.1f}s against C_seq's {base:.1f}s ({ratio}, goal <= {s.goal_ratio}). Its "
        f"{run.server.requests} requests, {k} at a time, would take {floor:.1f}s of round trips: "
        f"{wall - floor:.1f}s went elsewhere."
    )


def _slices(report: Report, goal: str, run: Run) -> str:
    slices = _pull(run).get("slices", [])
    if not slices:
        return ""
    blocked = sum(item["blocked"] for item in slices)
    pages = [item["pages"] for item in slices]
    started = min(item["start"] for item in slices)
    ended = max(item["end"] for item in slices)
    wall = run.result.wall_seconds if run.result else math.nan
    return (
        f"Slices: {len(slices)}, {median(pages):.0f} pages on median (min {min(pages)}, max "
        f"{max(pages)}); their workers spent {blocked:.1f}s in all waiting, before a request, for "
        "room in the shared buffer budget (pages of later slices waiting for the consumer to reach "
        "them, and requests in flight). The first slice "
        f"started at {started:.1f}s and the last ended at {ended:.1f}s; the {wall - ended:.1f}s "
        "after that finished the gzip stream and the upload (its last part, and the manifest)."
    )


def _limiter(report: Report, goal: str, run: Run) -> str:
    pull = _pull(run)
    changes = pull.get("limit_changes", [])
    if not changes:
        return ""
    lowest = min(value for _, value in changes)
    return (
        f"Limiter: the client saw {pull.get('rate_limited', 0)} 429s (the server sent "
        f"{run.server.refused}); the limit started at {goal[2:]}, went no lower than {lowest} and "
        f"ended at {changes[-1][1]} (changes: "
        + ", ".join(f"{t:.1f}s:{value}" for t, value in changes[:16])
        + (", ..." if len(changes) > 16 else "")
        + "). Each 429 also holds every request back for its Retry-After."
    )


def _pool(report: Report, big: int) -> list[str]:
    found = []
    for name in report.a_names:
        row = report.row(name, big)
        run = row.median_run() if row else None
        if run is not None and run.pool_full:
            found.append(
                f'{name}: urllib3 dropped {run.pool_full} connections ("Connection pool is full": the '
                f"session's pool keeps 10 connections for {name[2:]} threads), so those requests opened "
                "new ones."
            )
    return found


def _memory(report: Report, big: int) -> str:
    sizes = []
    for name in report.a_names:
        row = report.row(name, big)
        if row and row.ok:
            sizes.append(f"{name} {row.med('peak_rss_mb'):.0f} MB")
    if len(sizes) < 2:
        return ""
    return (
        "Peak RSS by k (room for a page per worker's request in flight plus a backlog of 16 MiB "
        "waiting for the consumer): " + ", ".join(sizes) + "."
    )
