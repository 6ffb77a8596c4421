"""
See the provider work end to end in about two minutes, with nothing but this checkout.

``make demo`` (or ``.venv/bin/python demo/run_demo.py``) starts two local stand-ins on free
loopback ports: the Cloud4Wi API simulator and moto's S3 server, with the bucket
``cloud4wi-events``. It then gives Airflow a throwaway home (``.airflow-demo/``, SQLite), defines
the connections through ``AIRFLOW_CONN_*`` environment variables and runs the example DAG
``cloud4wi_events_to_s3`` through Airflow itself (``airflow dags test``) for three consecutive hours.
Finally it reads the bucket back, checks every object against the simulator's own events, prints
a table, and stops everything it started.

The DAG does not know it talks to a simulator: with real credentials, e.g.::

    export AIRFLOW_CONN_CLOUD4WI_DEFAULT='{"conn_type": "cloud4wi",
        "host": "https://explore.cloud4wi.com", "login": "<client key>",
        "password": "<client secret>", "extra": {"organization_id": "<cid>"}}'

(and an ``aws_default`` connection to your AWS account), ``airflow dags test cloud4wi_events_to_s3
<date>`` exports the same hour from the real Explore API. This script itself always uses the
simulator, and ignores any ``AIRFLOW_*`` variable set in your shell.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # `python demo/run_demo.py` puts only demo/ on the path

from devtools.servers import LocalServer, cloud4wi_simulator, moto_server, tail  # noqa: E402

DEMO_HOME = REPO / ".airflow-demo"
DAG_ID = "cloud4wi_events_to_s3"
BUCKET = "cloud4wi-events"
AWS_REGION = "us-east-1"
SIMULATOR_SEED = 0
# `airflow dags test <dag> T` runs the interval that ends at T: [00:00, 01:00), [01:00, 02:00), ...
LOGICAL_DATES = ("2024-01-02T01:00:00+00:00", "2024-01-02T02:00:00+00:00", "2024-01-02T03:00:00+00:00")
RUN_TIMEOUT_SECONDS = 600.0
_KEY_WINDOW = re.compile(r"events_(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)\.jsonl\.gz$")


@dataclass(frozen=True)
class StoredObject:
    """One exported object, read back from the bucket."""

    key: str
    window_start: dt.datetime
    window_end: dt.datetime
    events: list[dict[str, Any]]
    size: int


def airflow_env(simulator_url: str, moto_url: str) -> dict[str, str]:
    """The environment of the Airflow commands: a private home, SQLite, connections as JSON."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    cloud4wi = {
        "conn_type": "cloud4wi",
        "host": simulator_url,
        "login": "sim-client-key",
        "password": "sim-client-secret",
        "extra": {"organization_id": "155d60f21dc1938562900a0e201d54f6"},
    }
    aws = {
        "conn_type": "aws",
        "login": "demo",
        "password": "demo",
        "extra": {"endpoint_url": moto_url, "region_name": AWS_REGION},
    }
    env.update(
        {
            "AIRFLOW_HOME": str(DEMO_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DEMO_HOME / 'airflow.db'}",
            "AIRFLOW_CONN_CLOUD4WI_DEFAULT": json.dumps(cloud4wi),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
            "CLOUD4WI_EXAMPLE_START_DATE": "2024-01-01T00:00:00+00:00",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def airflow(args: Sequence[str], env: dict[str, str], log_path: Path) -> float:
    """Run one ``airflow`` command, its output to ``log_path``; return its duration in seconds."""
    executable = Path(sys.executable).with_name("airflow")
    started = time.monotonic()
    with log_path.open("wb") as log:
        done = subprocess.run(
            [str(executable), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed; {log_path} ends with:\n{tail(log_path)}")
    return time.monotonic() - started


def s3_client(moto_url: str) -> Any:
    """A boto3 S3 client for the local moto server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=AWS_REGION,
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    )


def read_bucket(client: Any) -> list[StoredObject]:
    """Every exported object of the bucket, in key order, with its events; each must be its manifest's."""
    from airflow_provider_cloud4wi.transfers.keys import MANIFEST_SUFFIX
    from airflow_provider_cloud4wi.transfers.manifest import Manifest

    stored = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
    data_keys = [key for key in keys if not key.endswith(MANIFEST_SUFFIX)]
    listed = []
    for key in (key for key in keys if key.endswith(MANIFEST_SUFFIX)):
        listed += Manifest.from_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()).keys
    if sorted(listed) != data_keys:
        raise RuntimeError(f"The manifests list {sorted(listed)}, the bucket holds {data_keys}.")
    for key in data_keys:
        match = _KEY_WINDOW.search(key)
        if match is None:
            raise RuntimeError(f"Unexpected object in the bucket: {key}")
        start, end = (
            dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
            for stamp in match.groups()
        )
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        lines = gzip.decompress(body).decode("utf-8").splitlines()
        stored.append(StoredObject(key, start, end, [json.loads(line) for line in lines], len(body)))
    return stored


def check_against_simulator(stored: list[StoredObject]) -> None:
    """Fail unless the objects tile the three hours and hold exactly the simulator's events."""
    from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

    truth = Cloud4WiSimulator(seed=SIMULATOR_SEED)  # computes the dataset; never started
    ends = [dt.datetime.fromisoformat(date) for date in LOGICAL_DATES]
    expected_windows = [(end - dt.timedelta(hours=1), end) for end in ends]
    windows = [(item.window_start, item.window_end) for item in stored]
    if windows != expected_windows:
        raise RuntimeError(f"Expected one object per hour {expected_windows}, found {windows}.")
    for item in stored:
        if item.events != list(truth.expected_events(item.window_start, item.window_end)):
            raise RuntimeError(f"{item.key} does not hold exactly the simulator's events of its hour.")


def print_table(stored: list[StoredObject]) -> None:
    """The interval, event count, size and URI of each object, one line each."""
    header = ("interval (UTC)", "events", "bytes", "object")
    rows = [
        (
            f"[{item.window_start:%Y-%m-%d %H:%M}, {item.window_end:%H:%M})",
            str(len(item.events)),
            str(item.size),
            f"s3://{BUCKET}/{item.key}",
        )
        for item in stored
    ]
    widths = [max(len(row[n]) for row in [header, *rows]) for n in range(3)]
    for interval, events, size, uri in [header, *rows]:
        print(f"{interval:<{widths[0]}}  {events:>{widths[1]}}  {size:>{widths[2]}}  {uri}")


def prepare_home() -> Path:
    """A fresh, empty demo home; returns the folder for the demo's own logs."""
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    logs = DEMO_HOME / "demo-logs"
    logs.mkdir(parents=True)
    return logs


@contextlib.contextmanager
def stand_ins(log_dir: Path) -> Iterator[tuple[LocalServer, LocalServer]]:
    """The simulator and moto's S3 server, each on a free loopback port; both stop on the way out."""
    # Each in its own process group: a Ctrl-C of --keep-running reaches this script only, which
    # then stops them.
    with (
        cloud4wi_simulator(
            log_dir, "--seed", str(SIMULATOR_SEED), new_session=True, poll_seconds=0.2
        ) as simulator,
        moto_server(log_dir, name="moto-s3", new_session=True, poll_seconds=0.2) as moto,
    ):
        yield simulator, moto


def run_demo(keep_running: bool) -> None:
    """Everything, in order; the stand-ins stop when it returns or fails."""
    log_dir = prepare_home()
    print(f"Airflow home: {DEMO_HOME} (SQLite)")
    with stand_ins(log_dir) as (simulator, moto):
        print(f"Cloud4Wi simulator: {simulator.url}   moto S3: {moto.url}   bucket: s3://{BUCKET}")
        client = s3_client(moto.url)
        client.create_bucket(Bucket=BUCKET)
        env = airflow_env(simulator.url, moto.url)
        seconds = airflow(["db", "migrate"], env, log_dir / "db-migrate.log")
        print(f"airflow db migrate: {seconds:.0f}s")
        for n, logical_date in enumerate(LOGICAL_DATES, start=1):
            log_path = log_dir / f"dags-test-{n}.log"
            seconds = airflow(["dags", "test", DAG_ID, logical_date], env, log_path)
            print(f"airflow dags test {DAG_ID} {logical_date}: {seconds:.0f}s (log: {log_path})")
        stored = read_bucket(client)
        check_against_simulator(stored)
        print()
        print_table(stored)
        print()
        print("Every object holds exactly the simulator's events of its hour: no gap, no duplicate.")
        print_where_to_look(log_dir, moto.url, keep_running)
        if keep_running:
            wait_for_interrupt()


def print_where_to_look(log_dir: Path, moto_url: str, keep_running: bool) -> None:
    """Point at the logs, the run records and the bucket."""
    print(f"Each run's Airflow output, task logs included: {log_dir}/dags-test-*.log")
    print(f"The runs, as Airflow recorded them: AIRFLOW_HOME={DEMO_HOME} airflow dags list-runs {DAG_ID}")
    if not keep_running:
        print("The bucket lived in moto's memory and is gone: `make demo ARGS=--keep-running` keeps it up.")
        return
    client = (
        f"boto3.client('s3', endpoint_url='{moto_url}', region_name='{AWS_REGION}', "
        "aws_access_key_id='demo', aws_secret_access_key='demo')"
    )
    print("The bucket, until Ctrl-C stops this script:")
    print(
        f"  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo aws --endpoint-url {moto_url} "
        f"s3 ls --recursive s3://{BUCKET}/"
    )
    print(f"  python -c \"import boto3; print({client}.list_objects_v2(Bucket='{BUCKET}')['KeyCount'])\"")


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM, even when started in the background."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the demo; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the simulator and moto up after the runs, until Ctrl-C, to look at the bucket",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        run_demo(args.keep_running)
    except RuntimeError as err:
        print(f"Demo failed: {err}", file=sys.stderr)
        return 1
    print(f"Demo finished in {time.monotonic() - started:.0f}s; no process left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
