"""The two loopback servers of a benchmark run: the API simulator and moto's S3, each its own process."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    AWS_REGION,
    BUCKET,
    CACHE_BYTES_PER_EVENT,
    CLIENT_KEY,
    CLIENT_SECRET,
    DATA_START,
    EVENTS_PER_HOUR,
    ORGANIZATION_ID,
)
from devtools.servers import cloud4wi_simulator, moto_server


@dataclass(frozen=True)
class Servers:
    simulator_url: str
    moto_url: str
    simulator_pid: int
    moto_pid: int


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def running_servers(
    max_events: int, log_dir: Path, *, simulator_flags: Sequence[str] = (), cache_copies: int = 1
) -> Iterator[Servers]:
    """
    Start the simulator (page cache big enough for every window) and moto; stop both after.

    :param simulator_flags: more simulator options (the latency scenario's ``--latency-ms`` ...).
    :param cache_copies: how many differently cut pulls of each window the cache must hold (a
        pull in k time slices asks other queries than the sequential one).
    """
    hours = max_events / EVENTS_PER_HOUR
    data_end = DATA_START + dt.timedelta(hours=hours + 24)
    # Every window size is cached at once: 10k + 100k + 1M events is ~600 MB of rendered JSON.
    per_copy = max_events * 1.2 * CACHE_BYTES_PER_EVENT / (1024 * 1024)
    cache_mb = max(64, int(per_copy * max(1, cache_copies)) + 64)
    simulator_options = [
        "--events-per-hour",
        str(EVENTS_PER_HOUR),
        "--data-start",
        DATA_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--data-end",
        data_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--organization-id",
        ORGANIZATION_ID,
        "--client-key",
        CLIENT_KEY,
        "--client-secret",
        CLIENT_SECRET,
        "--page-cache-mb",
        str(cache_mb),
        # A scroll must outlive a slow pull's pauses (the naive task gzips nothing mid-pull, but dlt
        # flushes files between pages).
        "--scroll-ttl",
        "600",
        *simulator_flags,
    ]
    # A SIGTERM (or a SIGINT where the shell ignores it for background jobs) must still stop both
    # servers: turn it into SystemExit so that they are stopped on the way out.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with (
        cloud4wi_simulator(log_dir, *simulator_options, name="simulator") as simulator,
        moto_server(log_dir) as moto,
    ):
        _create_bucket(moto.url)
        yield Servers(simulator.url, moto.url, simulator.process.pid, moto.process.pid)


def s3_client(moto_url: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=AWS_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _create_bucket(moto_url: str) -> None:
    s3_client(moto_url).create_bucket(Bucket=BUCKET)


def rss_mb_of(pid: int) -> float:
    """Resident set of another process, MiB (to report the servers' footprint)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / (1024 * 1024)
    except OSError:
        return 0.0
