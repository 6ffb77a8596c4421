"""The orchestrator: servers up, caches warm, every variant in its own process, medians, results.md.

``python -m bench`` (what ``make bench`` runs) measures, for windows of 10k, 100k and 1M events:
A, the provider's Cloud4WiEventsToS3Operator; B, the hand-written task; C, the raw limit; D, dlt;
and A0, the operator with the package as it was before the speed-up (bench/reference.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import (
    AWS_REGION,
    BENCH_DIR,
    BUCKET,
    CLIENT_KEY,
    CLIENT_SECRET,
    EVENTS_PER_HOUR,
    ORGANIZATION_ID,
    PAGE_SIZE,
    REPO_DIR,
    WORK_DIR,
    ChildResult,
    api_params,
    s3_key,
    window_for,
)

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
VARIANTS = ("A", "B", "C", "D")


def _child_env(sim_url: str, moto_url: str) -> dict[str, str]:
    env = dict(os.environ)
    # This machine sets PYTHONDONTWRITEBYTECODE=1, which makes every child compile Airflow from source
    # on import; a worker has its bytecode cached, so the children may write and reuse it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    home = WORK_DIR / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    (WORK_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_DIR), env.get("PYTHONPATH", "")) if p),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_CONN_CLOUD4WI_DEFAULT": json.dumps(
                {
                    "conn_type": "cloud4wi",
                    "host": sim_url,
                    "login": CLIENT_KEY,
                    "password": CLIENT_SECRET,
                    "extra": {"organization_id": ORGANIZATION_ID},
                }
            ),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": moto_url, "region_name": AWS_REGION},
                }
            ),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            # dlt: no telemetry (no network here), its state and temp files under bench/.work.
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "RUNTIME__LOG_LEVEL": "WARNING",
            "DLT_DATA_DIR": str(WORK_DIR / "dlt-data"),
            "TMPDIR": str(WORK_DIR / "tmp"),
        }
    )
    return env


def _sim_stats(sim_url: str) -> dict:
    with urllib.request.urlopen(sim_url + "/_simulator/stats", timeout=10) as reply:
        return json.loads(reply.read())


def run_child(
    variant: str,
    size: int,
    *,
    python: str,
    env: dict[str, str],
    sim_url: str,
    moto_url: str,
    upload_size: int = 0,
    label: str | None = None,
    wrap: list[str] | None = None,
    extra: list[str] | None = None,
    tree: str | None = None,
) -> ChildResult:
    """Run one measured child and return what it reported (raises with the log's path on failure)."""
    start, end = window_for(size)
    label = label or variant
    command = [
        *(wrap or []),
        python,
        "-m",
        "bench.child",
        variant,
        "--size",
        str(size),
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--bucket",
        BUCKET,
        "--key",
        s3_key(label, size),
        "--simulator-url",
        sim_url,
        "--moto-url",
        moto_url,
        "--upload-size",
        str(upload_size),
        *(extra or []),
    ]
    log = WORK_DIR / "logs" / f"{label}-{size}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if tree:
        env = {**env, "BENCH_PACKAGE_TREE": tree}
    done = subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, text=True, check=False)
    log.write_text(f"$ {shlex.join(command)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    if done.returncode != 0:
        raise RuntimeError(f"{label} at {size} events failed (exit {done.returncode}); see {log}")
    return ChildResult.parse(done.stdout)


# ----------------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _versions() -> str:
    import importlib.metadata as metadata

    names = [
        "airflow-provider-cloud4wi",
        "apache-airflow",
        "apache-airflow-providers-amazon",
        "boto3",
        "botocore",
        "requests",
        "urllib3",
        "orjson",
        "msgspec",
        "isal",
        "zlib-ng",
        "moto",
    ]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return ", ".join(found)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ----------------------------------------------------------------------------------------- report
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt_size(size: int) -> str:
    return (
        f"{size // 1_000_000}M"
        if size >= 1_000_000 and size % 1_000_000 == 0
        else (f"{size // 1000}k" if size % 1000 == 0 else str(size))
    )


def _write_report(
    path: Path,
    *,
    command: str,
    started: dt.datetime,
    elapsed: float,
    sizes: list[int],
    labels: list[str],
    results: dict[tuple[str, int], list[ChildResult]],
    warm: dict[int, tuple[int, int, int, float]],
    sim_cache: dict,
    dlt_info: str,
    loads: tuple[str, str],
    skipped: list[str],
    before: str | None = None,
) -> str:
    aliases = {label: f"A@{i + 1}" for i, label in enumerate(x for x in labels if x.startswith("A@"))}

    def name(label: str) -> str:
        return aliases.get(label, label)

    def med(label: str, size: int, attr: str) -> float:
        return _median([getattr(r, attr) for r in results.get((label, size), [])])

    def c_min(size: int) -> float:
        rs = results.get(("C", size), [])
        values = [r.phases["pull"] + r.phases["upload_small"] for r in rs if "upload_small" in r.phases]
        return _median(values)

    lines = [
        "# Benchmark: Cloud4Wi events to S3",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} minutes in all, with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Machine",
        "",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} cores; memory {_memory_gib()}; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- Packages: {_versions()}",
        f"- dlt (own virtualenv, bench/.work/dlt-venv): {dlt_info}",
        f"- Load average at start / end: {loads[0]} / {loads[1]} (a shared machine: absolute times are "
        "noisy, compare the ratios, which come from runs interleaved round by round)",
        "",
        "## Set-up",
        "",
        f"- The API simulator (`airflow_provider_cloud4wi.testing.simulator`, its own process, "
        f"{EVENTS_PER_HOUR:,} events per hour, so windows of 1h/10h/100h) serves pre-rendered pages "
        f"from its page cache: each window was pulled once before timing "
        + ", ".join(
            f"{_fmt_size(s)}: {w[0]:,} events, {w[1]} pages, {w[2] / 1e6:.0f} MB in {w[3]:.1f}s"
            for s, w in warm.items()
        )
        + ", and A's time slices (other queries than the sequential scroll) by one untimed run of A. "
        f"Page cache after the run: {sim_cache.get('hits', '?')} hits, {sim_cache.get('misses', '?')} "
        "misses (the misses are the warm-up's).",
        f"- moto's S3 server (`python -m moto.server`, its own process) holds the bucket. Page size "
        f"{PAGE_SIZE:,} everywhere; every variant but A sends the same first query as the warm-up, "
        "and A the queries of its warm-up run, so all hit the cache.",
        "- Each run is a fresh process (`python -m bench.child`); its imports happen before the clock "
        "starts, as in a worker, and count in its peak RSS (`ru_maxrss` of the child, and of its own "
        'children for dlt). Wall and CPU seconds cover the task\'s work only; "of which GC" is the time '
        "Python's cyclic garbage collector ran inside it (measured with `gc.callbacks`).",
        "- A: `Cloud4WiEventsToS3Operator(...).execute({})`, gzip JSON Lines (the defaults). `execute` "
        "reads nothing from the context (the window is given as rendered values), so a minimal context "
        "runs every line a worker runs for the task, minus Airflow's task runner around it. Airflow's "
        "hook-lineage collector, which the first S3Hook upload of a process builds (importing every "
        "installed provider's asset modules: 1.5-2 s here, once per task process), is built before the "
        "clock for A and B alike.",
        "- B: the hand-written task: `requests` loop over the scroll, `.json()`, every event in one list, "
        '`"\\n".join(json.dumps(e) ...)`, `gzip.compress` (level 9, its default), `S3Hook.load_bytes`.',
        "- C: the raw limit: the same pages with a bare `requests.Session`, read in 1 MiB chunks and thrown "
        "away, then one upload (boto3 `upload_file`) of as many bytes as were read. C-min (ratios only): "
        "the same pull plus an upload of only as many bytes as A's gzip object, timed in the same child.",
        "- D: dlt's `rest_api` source (cursor paginator on `scrollId`, stop after an empty page), "
        'filesystem destination `s3://` on moto, `loader_file_format="jsonl"` (gzip), dlt defaults '
        "otherwise (nested objects flattened, one child table).",
        (
            f"- A0: the same operator, but the package as it was at commit {before[:7]} (extracted with "
            "`git archive`), before the speed-up (9ea13b2): the before of the before/after."
            if before
            else "- A0: not run."
        ),
        "",
        "## Results (medians)",
        "",
        "| window | variant | runs | wall s (min-max) | events/s | peak RSS MB | RSS before work MB "
        "| CPU s | of which GC s | object MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sizes:
        for label in labels:
            rs = results.get((label, size), [])
            if not rs:
                continue
            walls = [r.wall_seconds for r in rs]
            events = rs[0].events
            wall = _median(walls)
            lines.append(
                f"| {_fmt_size(size)} ({events:,} ev) | {name(label)} | {len(rs)} | {wall:.2f} "
                f"({min(walls):.2f}-{max(walls):.2f}) | {events / wall:,.0f} "
                f"| {med(label, size, 'peak_rss_mb'):.0f} | {med(label, size, 'rss_before_mb'):.0f} "
                f"| {med(label, size, 'cpu_seconds'):.1f} "
                f"| {_median([r.phases.get('gc_seconds', float('nan')) for r in rs]):.1f} "
                f"| {med(label, size, 'bytes_uploaded') / 1e6:.1f} |"
            )
    lines += ["", "## Ratios (of median wall times; lower is better for A)", ""]
    if aliases:
        lines += [f"{alias} is {label}." for label, alias in aliases.items()] + [""]
    a_labels = [label for label in labels if label.startswith("A")]
    header = (
        "| window | "
        + " | ".join(f"{name(a)}/{other}" for a in a_labels for other in ("C", "C-min", "B", "D"))
        + " |"
    )
    lines += [header, "| --- |" + " ---: |" * (len(a_labels) * 4)]
    for size in sizes:
        cells = []
        for a in a_labels:
            a_wall = med(a, size, "wall_seconds")
            for other in ("C", "C-min", "B", "D"):
                base = c_min(size) if other == "C-min" else med(other, size, "wall_seconds")
                cells.append(f"{a_wall / base:.2f}" if base == base and base > 0 else "-")
        lines.append(f"| {_fmt_size(size)} | " + " | ".join(cells) + " |")

    small, big = min(sizes), max(sizes)
    lines += ["", "## Goals (at the largest window)", ""]
    if small != big:
        lines += [
            "| goal | " + " | ".join(name(a) for a in a_labels) + " |",
            "| --- |" + " --- |" * len(a_labels),
        ]
        row_mem, row_c, row_b, row_d = (
            ["memory: RSS(big) - RSS(small) <= 150 MB"],
            ["A/C <= 2.0"],
            ["A/B <= 0.5"],
            ["A/D <= 0.2"],
        )
        for a in a_labels:
            grow = med(a, big, "peak_rss_mb") - med(a, small, "peak_rss_mb")
            row_mem.append(f"{grow:+.0f} MB {'met' if grow <= 150 else 'MISSED'}")
            for row, other, limit in ((row_c, "C", 2.0), (row_b, "B", 0.5), (row_d, "D", 0.2)):
                base = med(other, big, "wall_seconds")
                if base == base and base > 0:
                    ratio = med(a, big, "wall_seconds") / base
                    row.append(f"{ratio:.2f} {'met' if ratio <= limit else 'MISSED'}")
                else:
                    row.append("not run")
        for row in (row_mem, row_c, row_b, row_d):
            lines.append("| " + " | ".join(row) + " |")
        b_grow = med("B", big, "peak_rss_mb") - med("B", small, "peak_rss_mb")
        if b_grow == b_grow:
            lines.append("")
            lines.append(
                f"For comparison, B's peak RSS grows by {b_grow:+.0f} MB from {_fmt_size(small)} "
                f"to {_fmt_size(big)}."
            )
    notes = sorted(
        {
            f"{name(label)} at {_fmt_size(size)}: {rs[0].note}"
            for (label, size), rs in results.items()
            if rs[0].note
        }
    )
    if notes or skipped:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in notes]
        lines += [f"- {item}" for item in skipped]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="events per window")
    parser.add_argument("--runs", type=int, default=3, help="runs per variant and size (medians)")
    parser.add_argument(
        "--variants", default=None, help="any of A,B,C,D (default: all; latency scenario: A,C,D)"
    )
    parser.add_argument(
        "--before",
        default=None,
        help="the commit whose package runs as A0, the before of the before/after "
        "(default: the one before the speed-up; 'none' for no A0 row)",
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        help="an extra A row importing the package from this directory (e.g. a copy with a change "
        "applied); repeatable",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default: bench/results.md (latency scenario: its section of bench/results-latency.md)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=15.0,
        help="drop dlt's remaining runs at a size once the projected total exceeds this",
    )
    parser.add_argument("--serve", action="store_true", help="only start and warm the servers (debugging)")
    _add_latency_options(parser)
    args = parser.parse_args(argv)
    command = "python -m bench" + (
        "" if argv is None and len(sys.argv) <= 1 else " " + shlex.join(argv or sys.argv[1:])
    )
    if args.latency_ms or args.server_limit or args.concurrency:
        from bench import latency

        return latency.run(args, command)
    args.output = args.output or BENCH_DIR / "results.md"
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    variants = [v for v in (args.variants or ",".join(VARIANTS)).split(",") if v]
    from bench.reference import BEFORE_SPEEDUP, tree_at

    before_ref = args.before or BEFORE_SPEEDUP
    before_tree, before_hash = (None, "not requested") if before_ref == "none" else tree_at(before_ref)
    clock = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    load_start = _load()

    from bench.servers import running_servers
    from bench.variant_c import raw_pull

    dlt_python, dlt_info = None, "not requested"
    if "D" in variants:
        from bench import dlt_env

        dlt_python, dlt_info = dlt_env.ensure()
        print(f"dlt: {dlt_info}", flush=True)

    labels = [v for v in variants if v in VARIANTS and (v != "D" or dlt_python)]
    # A first (C uploads as many bytes as A's object for C-min), A0 right after A.
    a_rows = [label for label in labels if label == "A"]
    if a_rows and before_tree is not None:
        a_rows.append("A0")
    labels = a_rows + [f"A@{tree}" for tree in args.tree] + [label for label in labels if label != "A"]
    trees: dict[str, str] = {label: str(before_tree) for label in labels if label.startswith("A0")}
    trees.update({f"A@{tree}": tree for tree in args.tree})
    results: dict[tuple[str, int], list[ChildResult]] = {}
    warm: dict[int, tuple[int, int, int, float]] = {}
    skipped: list[str] = []
    if "D" in variants and not dlt_python:
        skipped.append(f"D (dlt) did not run: {dlt_info}")
    # A pulls in time slices (max_concurrency 4 by default): other queries than the sequential
    # scroll the other variants send, so the cache holds a second copy of each window.
    with running_servers(max(sizes), WORK_DIR / "logs", cache_copies=2) as servers:
        env = _child_env(servers.simulator_url, servers.moto_url)
        for size in sizes:
            t0 = time.perf_counter()
            events, pages, read = raw_pull(servers.simulator_url, api_params(*window_for(size)))
            warm[size] = (events, pages, read, time.perf_counter() - t0)
            if "A" in labels:  # one untimed run renders the slices' pages
                run_child(
                    "A",
                    size,
                    python=sys.executable,
                    env=env,
                    sim_url=servers.simulator_url,
                    moto_url=servers.moto_url,
                    label="warm-A",
                )
            print(
                f"warm {_fmt_size(size)}: {events} events, {pages} pages, {read / 1e6:.0f} MB, "
                f"{warm[size][3]:.1f}s",
                flush=True,
            )
        if args.serve:
            (WORK_DIR / "serve.env").write_text(
                "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if os.environ.get(k) != v)
                + f"export SIM_URL={servers.simulator_url} MOTO_URL={servers.moto_url}\n"
            )
            print("serving; environment in", WORK_DIR / "serve.env", flush=True)
            while True:
                time.sleep(3600)
        budget = args.budget_minutes * 60
        for size in sizes:
            for run in range(args.runs):
                for label in labels:
                    variant = label[0]
                    # Only dlt's runs at the largest window may be dropped, once one of them is in.
                    if variant == "D" and size == sizes[-1] and results.get((label, size)):
                        remaining = _projected(results, labels, sizes, size, run, args.runs, label)
                        spent = time.perf_counter() - clock
                        if spent + remaining > budget:
                            skipped.append(
                                f"D at {_fmt_size(size)}: run {run + 1} of {args.runs} skipped to keep the "
                                f"whole benchmark under {args.budget_minutes:.0f} minutes "
                                f"({spent / 60:.1f} spent, {remaining / 60:.1f} projected)"
                            )
                            continue
                    upload = 0
                    if variant == "C" and results.get(("A", size)):
                        upload = results[("A", size)][0].bytes_uploaded
                    result = run_child(
                        variant,
                        size,
                        python=str(dlt_python) if variant == "D" else sys.executable,
                        env=env,
                        sim_url=servers.simulator_url,
                        moto_url=servers.moto_url,
                        upload_size=upload,
                        label=label if "@" not in label else f"A-tree{args.tree.index(label[2:])}",
                        tree=trees.get(label),
                    )
                    results.setdefault((label, size), []).append(result)
                    print(
                        f"{_fmt_size(size):>4} run {run + 1} {label:<40} {result.wall_seconds:7.2f}s "
                        f"{result.events / result.wall_seconds:9,.0f} ev/s  "
                        f"peak RSS {result.peak_rss_mb:6.0f} MB  CPU {result.cpu_seconds:6.1f}s  "
                        f"{result.bytes_uploaded / 1e6:7.1f} MB out",
                        flush=True,
                    )
        cache = _sim_stats(servers.simulator_url).get("page_cache", {})
    text = _write_report(
        args.output,
        command=command,
        started=started,
        elapsed=time.perf_counter() - clock,
        sizes=sizes,
        labels=labels,
        results=results,
        warm=warm,
        sim_cache=cache,
        dlt_info=dlt_info,
        loads=(load_start, _load()),
        skipped=skipped,
        before=before_hash if before_tree is not None else None,
    )
    print()
    print(text)
    print(f"written to {args.output}")
    return 0


def _add_latency_options(parser: argparse.ArgumentParser) -> None:
    """The latency scenario's options (bench/latency.py); any of them selects that scenario."""
    group = parser.add_argument_group(
        "latency scenario (any of these runs it instead of the default benchmark: A@k rows, C_seq, "
        "written to bench/results-latency.md)"
    )
    group.add_argument("--latency-ms", type=float, default=0.0, help="the simulator delays every request")
    group.add_argument(
        "--server-limit",
        type=int,
        default=0,
        help="the simulator answers 429 (Retry-After 1 s) beyond this many requests in flight",
    )
    group.add_argument(
        "--concurrency", default="", help="A's max_concurrency values, e.g. 1,2,4,8,16 (the default)"
    )


def _projected(
    results: dict[tuple[str, int], list[ChildResult]],
    labels: list[str],
    sizes: list[int],
    size: int,
    run: int,
    runs: int,
    current: str,
) -> float:
    """Seconds the rest of the benchmark would take, from the walls measured so far (+2 s per child)."""
    total = 0.0
    for s in sizes:
        for r in range(runs):
            for label in labels:
                if (s, r) < (size, run) or (
                    s == size and r == run and labels.index(label) < labels.index(current)
                ):
                    continue
                done = results.get((label, s))
                if done:
                    total += done[-1].wall_seconds + 2.0
                else:  # not measured yet at this size: scale the last smaller size's time
                    smaller = [x for x in sizes if x < s and results.get((label, x))]
                    if smaller:
                        total += results[(label, smaller[-1])][-1].wall_seconds * s / smaller[-1] + 2.0
    return total
