"""``python -m bench.floor``: the work an exactly-once gzip export of a window cannot skip, stage by stage.

It pulls the window's pages once with a bare ``requests`` scroll (as C does), keeps their bodies,
then times, on those bodies, each step the provider's pull must take with the GIL held (checking
the JSON, decoding the three keys of every event, joining a page's lines) and the compression
(ISA-L, which releases the GIL). The sum of the GIL-held steps is the floor of one Python
process; the report compares it with C-min, the bare pull plus an upload of the gzip object's
size, which issue #11's no-latency goal measures A against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench import variant_c
from bench.common import BENCH_DIR, PAGE_SIZE, WORK_DIR, api_params, events_path, window_for
from bench.main import _load
from bench.servers import running_servers


def _bodies(simulator_url: str, size: int) -> tuple[list[bytes], float]:
    """The window's page bodies through the sequential scroll (as C pulls it), and the seconds it took."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + variant_c.login(session, simulator_url)
    url = simulator_url + events_path()
    query: dict[str, Any] = api_params(*window_for(size))
    bodies: list[bytes] = []
    started = time.perf_counter()
    while True:
        body = session.get(url, params=query).content
        bodies.append(body)
        match = variant_c._HEAD.search(body[:1024])
        if match is None or int(match.group(1)) == 0 or match.group(2) is None:
            break
        query = {"scrollId": match.group(2).decode(), "size": PAGE_SIZE}
    elapsed = time.perf_counter() - started
    session.close()
    return bodies, elapsed


def _timed(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results-floor.md")
    args = parser.parse_args(argv)
    from isal import igzip

    from airflow_provider_cloud4wi.api import codec
    from airflow_provider_cloud4wi.writer import ISAL_GZIP_LEVEL

    load = _load()
    with running_servers(args.size, WORK_DIR / "logs") as servers:
        _bodies(servers.simulator_url, args.size)  # renders the pages into the simulator's cache
        reads = [_bodies(servers.simulator_url, args.size)[1] for _ in range(args.runs)]
        bodies, _ = _bodies(servers.simulator_url, args.size)
    pages = [codec.parse_events_page(body, raw=True)["events"] for body in bodies]
    blocks = [b"\n".join([*events, b""]) for events in pages]
    steps = {
        "read the pages (bare requests scroll, loopback)": statistics.median(reads),
        "check each page's JSON, events kept as raw text (msgspec)": _timed(
            lambda: [codec._RAW_PAGE.decode(body) for body in bodies], args.runs
        ),
        "decode every event's type, id and time (msgspec, one pass a page)": _timed(
            lambda: [codec._usual_keys(body) for body in bodies], args.runs
        ),
        "join each page's lines into one block": _timed(
            lambda: [b"\n".join([*events, b""]) for events in pages], args.runs
        ),
    }
    compress = _timed(lambda: [igzip.compress(block, ISAL_GZIP_LEVEL) for block in blocks], args.runs)
    held = sum(steps.values())
    events = sum(len(events) for events in pages)
    megabytes = sum(map(len, bodies)) / 1e6
    lines = [
        "# The floor of a no-latency export (issue #11)",
        "",
        f"`python -m bench.floor --size {args.size} --runs {args.runs}`, "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load} / {_load()}; "
        f"{events:,} events, {len(bodies)} pages, {megabytes:.0f} MB of JSON. Medians of {args.runs} runs.",
        "",
        "| step | seconds | holds the GIL |",
        "| --- | ---: | --- |",
        *[f"| {name} | {seconds:.2f} | yes |" for name, seconds in steps.items()],
        f"| gzip the blocks (ISA-L level {ISAL_GZIP_LEVEL}) | {compress:.2f} | no (another core) |",
        f"| **one process's floor: the steps holding the GIL** | **{held:.2f}** | |",
        "",
        "The reads hold the GIL for most of their time too (http.client's buffering and urllib3's "
        "chunking run in Python). Everything else A does (threads handing pages over, the parts "
        "and their hashes, the upload, Airflow's S3 hook) comes on top of this floor.",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
