"""The two loopback servers of a benchmark run: the API simulator and moto's S3, each its own process."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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

_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Servers:
    simulator_url: str
    moto_url: str
    simulator_pid: int
    moto_pid: int


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_servers(max_events: int, log_dir: Path) -> Iterator[Servers]:
    """Start the simulator (page cache big enough for every window) and moto; stop both after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    hours = max_events / EVENTS_PER_HOUR
    data_end = DATA_START + dt.timedelta(hours=hours + 24)
    # Every window size is cached at once: 10k + 100k + 1M events is ~600 MB of rendered JSON.
    cache_mb = max(64, int(max_events * 1.2 * CACHE_BYTES_PER_EVENT / (1024 * 1024)) + 64)
    sim_port, moto_port = _free_port(), _free_port()
    sim_cmd = [
        sys.executable,
        "-m",
        "airflow_provider_cloud4wi.testing.simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(sim_port),
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
    ]
    moto_cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)]
    # A SIGTERM (or a SIGINT where the shell ignores it for background jobs) must still stop both
    # servers: turn it into SystemExit so the finally below runs.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with (log_dir / "simulator.log").open("wb") as sim_log, (log_dir / "moto.log").open("wb") as moto_log:
        sim = subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, stderr=sim_log, stdin=subprocess.DEVNULL)
        moto = subprocess.Popen(moto_cmd, stdout=moto_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            assert sim.stdout is not None
            line = sim.stdout.readline().decode()
            match = re.search(r"listening on (\S+)", line)
            if not match:
                raise RuntimeError(f"the simulator did not start: {line!r}; see {log_dir / 'simulator.log'}")
            sim_url = match.group(1)
            moto_url = f"http://127.0.0.1:{moto_port}"
            deadline = time.monotonic() + _START_TIMEOUT
            while not _answers(moto_url):
                if moto.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start; see {log_dir / 'moto.log'}")
                time.sleep(0.1)
            _create_bucket(moto_url)
            yield Servers(sim_url, moto_url, sim.pid, moto.pid)
        finally:
            _stop(sim)
            _stop(moto)


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
