"""``python -m bench.candidates``: A before/after each proposed change at 1M events, into candidates.md.

Each configuration is A0 (the package before the speed-up, at bench.reference.BEFORE_SPEEDUP, which
the prototypes patch) with some prototypes of bench/prototypes.py applied, plus a last row for the
package of this checkout (where 9ea13b2 applied the changes for real); runs are interleaved
round by round (baseline, change 1, change 2, ..., baseline, ...) so that the machine's drift hits
all of them alike. About 8 minutes with the defaults on the 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from bench.common import BENCH_DIR, WORK_DIR, ChildResult, api_params, window_for

#: (configuration, what it is). Singles first (each against the baseline), then the stack.
CONFIGS: list[tuple[str, str]] = [
    ("", "A0: the package before the speed-up (baseline)"),
    ("gc", "pause the cyclic GC while a page is parsed"),
    ("rawread", "read each reply with one raw.read()"),
    ("isal", "isal.igzip level 2 instead of gzip level 6"),
    ("zng", "zlib_ng.gzip_ng level 6 instead of gzip level 6"),
    ("tgzip", "isal level 2 in a background thread (igzip_threaded)"),
    ("passthru", "msgspec: parse keys + raw slice per event, no re-serialisation"),
    ("prefetch", "pull a page ahead in a producer thread"),
    ("gc+isal", "stack: gc + isal"),
    ("gc+tgzip", "stack: gc + threaded isal"),
    ("gc+tgzip+passthru", "stack: + pass-through"),
    ("gc+tgzip+passthru+rawread", "stack: + raw read"),
    ("gc+tgzip+passthru+rawread+prefetch", "stack: + prefetch (all)"),
    ("gc+tzng+passthru+rawread+prefetch", "all, with threaded zlib-ng level 6 (same ratio as today)"),
    ("gc+tgzip3+passthru+rawread+prefetch", "all, with threaded isal level 3"),
    ("checkout", "A: the package of this checkout (the proposals applied, 9ea13b2)"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.candidates", description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated configurations (default: all)")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "candidates.md")
    args = parser.parse_args(argv)
    configs = CONFIGS
    if args.only:
        wanted = ["" if name == "base" else name for name in args.only.split(",")]
        configs = [c for c in CONFIGS if c[0] in wanted]

    from bench.main import _child_env, _load, run_child
    from bench.reference import BEFORE_SPEEDUP, tree_at
    from bench.servers import running_servers
    from bench.variant_c import raw_pull

    before, before_hash = tree_at(BEFORE_SPEEDUP)
    if before is None:
        raise SystemExit(f"cannot extract the package at {BEFORE_SPEEDUP}: {before_hash}")

    started = dt.datetime.now(dt.timezone.utc)
    load_start = _load()
    clock = time.perf_counter()
    results: dict[str, list[ChildResult]] = {}
    with running_servers(args.size, WORK_DIR / "logs") as servers:
        raw_pull(servers.simulator_url, api_params(*window_for(args.size)))
        env = _child_env(servers.simulator_url, servers.moto_url)
        for run in range(args.runs):
            for proto, _ in configs:
                checkout = proto == "checkout"
                label = "A" if checkout else (f"A0+{proto}" if proto else "A0")
                result = run_child(
                    "A",
                    args.size,
                    python=sys.executable,
                    env=env,
                    sim_url=servers.simulator_url,
                    moto_url=servers.moto_url,
                    proto="" if checkout else proto,
                    label=label,
                    tree=None if checkout else str(before),
                )
                results.setdefault(proto, []).append(result)
                print(
                    f"run {run + 1} {label:<45} {result.wall_seconds:6.2f}s CPU {result.cpu_seconds:5.1f}s "
                    f"RSS {result.peak_rss_mb:5.0f} MB  {result.bytes_uploaded / 1e6:6.1f} MB",
                    flush=True,
                )
    base = statistics.median(r.wall_seconds for r in results[""]) if "" in results else float("nan")
    events = next(iter(results.values()))[0].events
    lines = [
        f"# A before/after each candidate change, {events:,} events",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC ({(time.perf_counter() - clock) / 60:.1f} min; load average "
        f"{load_start} at start, {_load()} at end) with `python -m bench.candidates"
        + (" " + " ".join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else "")
        + f"`: {args.runs} interleaved runs each, medians. A0 = the package at {before_hash[:7]}. "
        "Prototypes: bench/prototypes.py; the code "
        "changes they stand for: bench/proposals/.",
        "",
        "| configuration | what | wall s (min-max) | vs baseline | CPU s | peak RSS MB | object MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for proto, what in configs:
        rs = results[proto]
        walls = [r.wall_seconds for r in rs]
        wall = statistics.median(walls)
        lines.append(
            f"| `{proto or 'A0'}` | {what} | {wall:.2f} ({min(walls):.2f}-{max(walls):.2f}) | "
            f"{wall / base:.2f}x | {statistics.median(r.cpu_seconds for r in rs):.1f} | "
            f"{statistics.median(r.peak_rss_mb for r in rs):.0f} | "
            f"{statistics.median(r.bytes_uploaded for r in rs) / 1e6:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
