"""``python -m bench.footprint``: what one export needs of a worker as its window grows.

For each store (S3 on moto's server, GCS on the gcp-storage-emulator), layout and window size,
variant A runs in a process of its own (``bench.child``) with ``TMPDIR`` a fresh, empty directory
whose size the parent samples every 20 ms. Layouts: the default export (one JSON Lines object,
uploaded while the pull runs) and a split one (``max_events_per_file``: parts written to local
files, each uploaded as soon as it is complete). The report, bench/results-footprint.md, gives
per row the peak local disk, the peak RSS and the events landed, and checks issue #11's goals:
peak RSS growth from the smallest window to 1M events at most 150 MB (and how much more a larger
window takes), peak local disk the same at the two largest windows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import BENCH_DIR, BUCKET, WORK_DIR, ChildResult
from bench.main import _child_env, _load, _versions, run_child
from bench.servers import running_servers
from devtools.servers import gcs_emulator

GCP_PROJECT = "bench"
#: The window at which issue #11 states its memory goal (growth from the smallest window).
GOAL_SIZE = 1_000_000
LAYOUTS = {
    "one object": {},
    "parts of 200k events": {"max_events_per_file": 200_000},
}


@dataclass
class Row:
    """One measured export."""

    store: str
    layout: str
    size: int
    result: ChildResult
    peak_disk_bytes: int


class DiskWatch:
    """The largest total size of the files under ``directory``, sampled every 20 ms."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._size())

    def _size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.directory):
            for name in files:
                with contextlib.suppress(OSError):  # removed while we looked
                    total += os.stat(os.path.join(root, name)).st_size
        return total

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._size())


@contextlib.contextmanager
def _gcs(log_dir: Path) -> Iterator[str]:
    """The GCS emulator with the bench's bucket; its URL."""
    with gcs_emulator(log_dir) as server:
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        storage.Client(project=GCP_PROJECT, credentials=AnonymousCredentials()).create_bucket(BUCKET)
        yield server.url


def _measure(
    store: str, layout: str, size: int, concurrency: int, env: dict[str, str], urls: tuple[str, str]
) -> Row:
    scratch = Path(tempfile.mkdtemp(prefix="footprint-", dir=WORK_DIR))
    options = json.dumps(LAYOUTS[layout])
    extra = ["--store", store, "--operator-options", options, "--max-concurrency", str(concurrency)]
    label = f"footprint-{store}-{layout.split()[0]}"
    try:
        with DiskWatch(scratch) as disk:
            result = run_child(
                "A",
                size,
                python=sys.executable,
                env={**env, "TMPDIR": str(scratch)},
                sim_url=urls[0],
                moto_url=urls[1],
                label=label,
                extra=extra,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Row(store, layout, size, result, disk.peak)


def _report(rows: list[Row], command: str, concurrency: int, started: dt.datetime, load: str) -> str:
    sizes = sorted({row.size for row in rows})
    lines = [
        "# Benchmark: what one export needs of a worker (issue #11)",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC with `{command}`; load average at start / end: "
        f"{load} / {_load()}.",
        "",
        f"- Packages: {_versions()}",
        f"- Variant A at `max_concurrency={concurrency}`, each run in its own process with `TMPDIR` a "
        "fresh directory, sampled every 20 ms for the size of its files (peak local disk). Peak RSS is "
        "the child's `ru_maxrss`, imports included. The simulator renders a window on its first "
        "request, so the wall times of a window's first row include that.",
        "- Layouts: `one object` is the default export (one JSON Lines object, uploaded in parts while "
        "the pull runs); `parts of 200k events` (`max_events_per_file=200000`) writes each part to "
        "a local file and uploads it as soon as it is complete.",
        "",
        "| store | layout | window | events | wall s | peak RSS MB | peak local disk MB | object MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.store} | {row.layout} | {row.size:,} | {row.result.events:,} | "
            f"{row.result.wall_seconds:.2f} | {row.result.peak_rss_mb:.0f} | "
            f"{row.peak_disk_bytes / 1e6:.1f} | {row.result.bytes_uploaded / 1e6:.1f} |"
        )
    lines += [
        "",
        "## Goals",
        "",
        "| store | layout | goal | measured | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for store in dict.fromkeys(row.store for row in rows):
        for layout in dict.fromkeys(row.layout for row in rows):
            mine = {row.size: row for row in rows if row.store == store and row.layout == layout}
            if len(mine) < 2:
                continue
            # The goal is from 10k to 1M events; a larger window shows whether it stays flat.
            goal_size = GOAL_SIZE if GOAL_SIZE in mine else sizes[-1]
            small, big = mine[sizes[0]], mine[goal_size]
            growth = big.result.peak_rss_mb - small.result.peak_rss_mb
            lines.append(
                f"| {store} | {layout} | peak RSS growth {sizes[0]:,} -> {goal_size:,} <= 150 MB | "
                f"+{growth:.0f} MB | {'met' if growth <= 150 else 'MISSED'} |"
            )
            if sizes[-1] > goal_size:
                further = mine[sizes[-1]].result.peak_rss_mb - big.result.peak_rss_mb
                lines.append(
                    f"| {store} | {layout} | peak RSS growth {goal_size:,} -> {sizes[-1]:,} (flat?) | "
                    f"{further:+.0f} MB | shown |"
                )
            if len(sizes) >= 3:
                before, last = mine[sizes[-2]].peak_disk_bytes, big.peak_disk_bytes
                same = last <= before * 1.1 + 1_000_000
                lines.append(
                    f"| {store} | {layout} | peak local disk at {sizes[-2]:,} = at {sizes[-1]:,} | "
                    f"{before / 1e6:.1f} MB / {last / 1e6:.1f} MB | {'met' if same else 'MISSED'} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint")
    parser.add_argument("--sizes", default="10000,1000000,5000000", help="events per window")
    parser.add_argument("--concurrency", type=int, default=8, help="A's max_concurrency")
    parser.add_argument("--stores", default="s3,gcs")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="of: " + ", ".join(LAYOUTS))
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results-footprint.md")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    stores = args.stores.split(",")
    layouts = [name.strip() for name in args.layouts.split(",")]
    command = "python -m bench.footprint " + shlex.join(argv if argv is not None else sys.argv[1:])
    started, load = dt.datetime.now(dt.timezone.utc), _load()
    log_dir = WORK_DIR / "logs"
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        servers = stack.enter_context(running_servers(max(sizes), log_dir))
        env = _child_env(servers.simulator_url, servers.moto_url)
        if "gcs" in stores:
            env["STORAGE_EMULATOR_HOST"] = stack.enter_context(_gcs(log_dir))
            env["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"] = json.dumps(
                {
                    "conn_type": "google_cloud_platform",
                    "extra": {"is_anonymous": True, "project": GCP_PROJECT},
                }
            )
        for size in sizes:
            for store in stores:
                for layout in layouts:
                    began = time.monotonic()
                    row = _measure(
                        store, layout, size, args.concurrency, env, (servers.simulator_url, servers.moto_url)
                    )
                    rows.append(row)
                    print(
                        f"{store} {layout} {size}: {row.result.events} events, "
                        f"RSS {row.result.peak_rss_mb:.0f} MB, disk {row.peak_disk_bytes / 1e6:.1f} MB "
                        f"({time.monotonic() - began:.0f}s)",
                        flush=True,
                    )
    args.output.write_text(_report(rows, command, args.concurrency, started, load))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
