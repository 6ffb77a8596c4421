"""One measured run of one variant, in a process of its own: ``python -m bench.child VARIANT ...``.

The modules a variant needs are imported before the clock starts (a worker has them loaded, and
import time is not what is compared); the peak RSS includes them, as a worker's does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from bench.common import ChildResult, Timer, api_params, peak_rss_mb

if TYPE_CHECKING:
    from bench.observe import PullObserver

_PRELOAD = {
    "A": [
        # The package imports its accelerators itself, where installed.
        "requests",
        "airflow.providers.amazon.aws.hooks.s3",
        "airflow_provider_cloud4wi.transfers.events_to_s3",
    ],
    "B": ["requests", "airflow.providers.amazon.aws.hooks.s3", "airflow_provider_cloud4wi._compat"],
    "C": ["requests", "boto3", "bench.servers"],
    "D": ["requests", "dlt", "dlt.sources.rest_api", "s3fs"],
}


def _warm_airflow_runtime() -> None:
    """
    Pay Airflow's one-off hook-lineage set-up before the clock starts.

    The first S3Hook upload in a process builds Airflow's hook lineage collector, which imports
    the asset modules of every installed provider (here google's GCS hook and its whole client
    stack): 1.5-2 s, once per task process, whoever calls S3Hook. A and B both pay it; it is
    Airflow's cost, not the provider's, so it is moved out of the measured part (and reported
    in results.md).
    """
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
    except ImportError:  # pragma: no cover - older compat provider
        return
    get_hook_lineage_collector()


class _GcClock:
    """Seconds the cyclic garbage collector ran (all generations, all threads), and full collections."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info.get("generation") == 2


def _observer(args: argparse.Namespace) -> PullObserver | None:
    """The pull observer of ``--observe`` (A only), installed; None otherwise."""
    if not args.observe or args.variant != "A":
        return None
    from bench.observe import PullObserver

    observer = PullObserver()
    observer.install()
    return observer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("variant", choices=sorted(_PRELOAD))
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--simulator-url", required=True)
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--upload-size", type=int, default=0)
    parser.add_argument("--dlt-nesting", type=int, default=None)
    parser.add_argument("--max-concurrency", type=int, default=None, help="A: the operator's max_concurrency")
    parser.add_argument("--observe", action="store_true", help="A: report its slices and limiter")
    parser.add_argument("--store", choices=("s3", "gcs"), default="s3", help="A: the operator's store")
    parser.add_argument("--operator-options", default="{}", help="A: more operator arguments, as JSON")
    args = parser.parse_args(argv)
    tree = os.environ.get("BENCH_PACKAGE_TREE")
    if tree:  # another copy of the package (e.g. an earlier commit's) before the installed one
        sys.path.insert(0, tree)
    start, end = dt.datetime.fromisoformat(args.start), dt.datetime.fromisoformat(args.end)
    params = api_params(start, end)

    for module in _PRELOAD[args.variant]:
        importlib.import_module(module)
    if args.variant == "A" and args.store == "gcs":
        importlib.import_module("airflow_provider_cloud4wi.transfers.events_to_gcs")
    if args.variant in ("A", "B"):
        _warm_airflow_runtime()
    observer = _observer(args)
    gc.collect()

    note = ""
    phases: dict[str, float] = {}
    detail: dict[str, object] = {}
    gc_clock = _GcClock()
    gc.callbacks.append(gc_clock)
    if observer is not None:
        observer.origin = time.perf_counter()
    with Timer() as timer:
        if args.variant == "A":
            from bench import variant_a

            events, size, objects = variant_a.run(
                args.bucket,
                args.key,
                start,
                end,
                args.max_concurrency,
                store=args.store,
                options=json.loads(args.operator_options),
            )
            detail["objects"] = objects
        elif args.variant == "B":
            from bench import variant_b

            events, size = variant_b.run(args.bucket, args.key, params)
        elif args.variant == "C":
            from bench import variant_c

            events, size, phases = variant_c.run(
                args.simulator_url, args.moto_url, args.bucket, args.key, params, args.upload_size
            )
        else:
            from bench import variant_d

            events, size, note = variant_d.run(
                args.simulator_url, args.moto_url, args.bucket, args.key, params, args.dlt_nesting
            )
    gc.callbacks.remove(gc_clock)
    phases["gc_seconds"] = gc_clock.seconds
    phases["gc_full_collections"] = float(gc_clock.full)
    wall = timer.wall - phases.pop("exclude", 0.0)
    ChildResult(
        variant=args.variant,
        size=args.size,
        events=events,
        bytes_uploaded=size,
        wall_seconds=wall,
        peak_rss_mb=peak_rss_mb(),
        rss_before_mb=timer.rss_before,
        cpu_seconds=timer.cpu,
        note=note,
        phases=phases,
        detail={**detail, **({"pull": observer.report()} if observer is not None else {})},
    ).emit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
