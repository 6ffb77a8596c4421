"""A real Airflow 3 backfill of the hourly S3 example, run by the scheduler.

The test runs Airflow as a deployment would, in separate processes sharing one private
AIRFLOW_HOME: the api-server (whose execution API the tasks talk to), the dag-processor and the
scheduler with the LocalExecutor, on SQLite. ``airflow backfill create`` asks for six hourly
runs of 2024-01-02 before the scheduler starts (so that a creation undone and retried after a
lock never pulls runs from under a running scheduler), and the test waits for the scheduler to
finish them and compares every hour's object with the simulator's events: no hour missing, none
twice, no event lost or doubled.

SQLite takes one writer at a time, so on a busy machine a component can hold the write lock longer
than a client is willing to wait. The test therefore gives every connection a long busy timeout
(``?timeout=`` in the SQLAlchemy URL), switches the database to WAL (readers no longer block the
writer), retries a CLI call that still fails with "database is locked" a bounded number of times,
and waits on states (DAG parsed, scheduler running, runs finished) with generous deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration_stack import airflow_major, answers, example_connections, hour_key, wait_until
from storage_servers import LocalServer, S3BucketView, assert_committed_once

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from devtools.airflow_stack import COMMANDS, AirflowProcesses, clean_environment
from devtools.servers import HOST, free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "example_dags" / "cloud4wi_events_to_s3.py"
DAG_ID = "cloud4wi_events_to_s3"
UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
FIRST_HOUR = dt.datetime(2024, 1, 2, 0, tzinfo=UTC)
HOURS = 6
# Logical dates are the intervals' starts; --to-date is inclusive, so this is six runs.
LAST_LOGICAL_DATE = FIRST_HOUR + (HOURS - 1) * HOUR
# Generous deadlines: they only bound a hung deployment; a healthy one returns as soon as it is ready.
STARTUP_TIMEOUT_SECONDS = 420.0
BACKFILL_TIMEOUT_SECONDS = 900.0
# How long a SQLite connection waits for the write lock before "database is locked" (default 5 s).
SQLITE_BUSY_TIMEOUT_SECONDS = 60
# A CLI call that fails with a transient lock is retried this many times, backing off 2, 4, 8... s.
LOCK_RETRIES = 5
LOCK_BACKOFF_SECONDS = 2.0
LOCKED = "database is locked"

log = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.airflow3_only,
    pytest.mark.skipif(airflow_major() < 3, reason="`airflow backfill create` needs Airflow 3."),
]


@dataclass
class AirflowDeployment(AirflowProcesses):
    """Airflow's components on one SQLite home, with the lock retries SQLite needs under load."""

    def run_retrying_locks(
        self, name: str, *args: str, done_already: Callable[[], bool] | None = None
    ) -> None:
        """Run an ``airflow`` command; retry it when it fails on a transient SQLite lock.

        Up to ``LOCK_RETRIES`` retries with an exponential backoff, each logged, each attempt's
        output in its own log. When ``done_already`` says a failed attempt's effect was committed
        anyway, it is not repeated.
        """
        self.run(
            name,
            *args,
            retry_on=LOCKED,
            retries=LOCK_RETRIES,
            backoff_seconds=LOCK_BACKOFF_SECONDS,
            done_already=done_already,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read (or, in a transaction of its own, change) the metadata database directly."""
        for attempt in range(LOCK_RETRIES + 1):
            try:
                db = sqlite3.connect(self.home / "airflow.db", timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
                with contextlib.closing(db), db:
                    return list(db.execute(sql, params).fetchall())
            except sqlite3.OperationalError as error:
                if LOCKED not in str(error) or attempt == LOCK_RETRIES:
                    raise
                log.warning("query %r: %s (attempt %d); retrying", sql, error, attempt + 1)
                time.sleep(LOCK_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")


def deployment_env(
    home: Path, api_port: int, simulator: Cloud4WiSimulator, moto_url: str, bucket: str
) -> dict[str, str]:
    """A private Airflow 3 configuration plus the example's connections and bucket."""
    env = clean_environment()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # SQLAlchemy's pysqlite (and aiosqlite) dialect passes ``timeout`` to sqlite3.connect:
            # the busy timeout of every sync and async engine of every component. (Airflow 3.3
            # cannot take it from [database] sql_alchemy_engine_args: it passes its own
            # connect_args beside them, and sql_alchemy_connect_args is an import path.)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"sqlite:///{home / 'airflow.db'}?timeout={SQLITE_BUSY_TIMEOUT_SECONDS}"
            ),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # SQLite takes one writer at a time. On Airflow 3 tasks write through the api-server, so
            # the writers are three processes whatever the parallelism: 4 slots run the DAG's
            # max_active_runs at once without "database is locked" (1 works too, twice as slowly).
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "cloud4wi-backfill-test-secret",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Only the backfill creates runs: the scheduler's own catch-up from start_date is off.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            **example_connections(simulator, moto_url, bucket),
        }
    )
    return env


@pytest.fixture
def deployment(
    tmp_path: Path, cloud4wi_simulator: Cloud4WiSimulator, moto_server: LocalServer, s3_bucket: S3BucketView
) -> Iterator[AirflowDeployment]:
    """A migrated Airflow 3 home with the S3 example parsed, the scheduler not started yet; stopped after.

    The scheduler starts once the backfill exists (``start_scheduler``): a ``backfill create``
    that hits a lock part-way is undone (by Airflow, or by ``backfill_created``) and retried, and
    a scheduler already scheduling the removed runs would die on them (ObjectDeletedError).
    """
    if airflow_major() < 3:
        pytest.skip("`airflow backfill create` and the api-server exist on Airflow 3 only.")
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(EXAMPLE, home / "dags" / EXAMPLE.name)
    api_port = free_port()
    env = deployment_env(home, api_port, cloud4wi_simulator, moto_server.url, s3_bucket.name)
    airflow = AirflowDeployment(home=home, env=env)
    airflow.run_retrying_locks("db-migrate", "db", "migrate")
    # WAL is a property of the database file: every component's connection uses it from now on.
    assert airflow.query("PRAGMA journal_mode=WAL") == [("wal",)]
    try:
        airflow.start(
            "api-server", *COMMANDS["api-server"], "--host", HOST, "--port", str(api_port), "--workers", "1"
        )
        airflow.start("dag-processor", *COMMANDS["dag-processor"])
        wait_until_ready(airflow, f"http://{HOST}:{api_port}/api/v2/version")
        yield airflow
    finally:
        airflow.stop()


def wait_until_ready(airflow: AirflowDeployment, api_url: str) -> None:
    """Wait until the api-server answers and the dag-processor has stored the DAG, unpaused."""

    def ready() -> bool:
        return bool(
            answers(api_url)
            and airflow.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID)
            and airflow.query("SELECT 1 FROM dag WHERE dag_id = ? AND NOT is_paused", DAG_ID)
        )

    wait_until(airflow, ready, "the api-server and the parsed DAG", STARTUP_TIMEOUT_SECONDS)


def start_scheduler(airflow: AirflowDeployment) -> None:
    """Start the scheduler and wait until its job runs."""
    airflow.start("scheduler", *COMMANDS["scheduler"])
    running = "SELECT 1 FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'"
    wait_until(airflow, lambda: bool(airflow.query(running)), "the scheduler", STARTUP_TIMEOUT_SECONDS)


def backfill_created(airflow: AirflowDeployment) -> bool:
    """Whether a failed ``backfill create`` committed its backfill and all its runs anyway.

    Airflow commits the backfill before its runs and removes it again when creating a run hits a
    lock; should that removal have failed too, the partial backfill is removed here (as Airflow
    would) so that the retry does not fail with "already running backfill".
    """
    backfills = airflow.query("SELECT id FROM backfill WHERE dag_id = ?", DAG_ID)
    if not backfills:
        return False
    runs = airflow.query("SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'", DAG_ID)
    if len(backfills) == 1 and runs == [(HOURS,)]:
        return True
    log.warning("removing partial backfills %s (%s runs) before the retry", backfills, runs)
    for (backfill_id,) in backfills:
        airflow.query("DELETE FROM backfill_dag_run WHERE backfill_id = ?", backfill_id)
        airflow.query("DELETE FROM dag_run WHERE backfill_id = ?", backfill_id)
        airflow.query("DELETE FROM backfill WHERE id = ?", backfill_id)
    return False


def backfill_run_states(airflow: AirflowDeployment) -> list[str]:
    """The states of the DAG's backfill runs."""
    rows = airflow.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'", DAG_ID)
    return [str(state) for (state,) in rows]


def wait_for_backfill(airflow: AirflowDeployment) -> list[str]:
    """Wait until every backfill run has finished (or one failed); return the states."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_SECONDS
    while True:
        airflow.check_alive()
        states = backfill_run_states(airflow)
        if (len(states) == HOURS and set(states) <= {"success", "failed"}) or "failed" in states:
            return states
        assert time.monotonic() < deadline, f"Backfill still at {states}:\n{airflow.diagnostics()}"
        time.sleep(2)


def test_a_six_hour_backfill_run_by_the_scheduler_exports_every_hour_once(
    deployment: AirflowDeployment, cloud4wi_simulator: Cloud4WiSimulator, s3_bucket: S3BucketView
) -> None:
    deployment.run_retrying_locks(
        "backfill-create",
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        FIRST_HOUR.isoformat(),
        "--to-date",
        LAST_LOGICAL_DATE.isoformat(),
        done_already=lambda: backfill_created(deployment),
    )
    start_scheduler(deployment)

    states = wait_for_backfill(deployment)

    assert states == ["success"] * HOURS, deployment.diagnostics()
    hours = [FIRST_HOUR + n * HOUR for n in range(HOURS)]
    keys = [hour_key(cloud4wi_simulator.organization_id, start) for start in hours]
    assert_committed_once(s3_bucket, keys)
    for start, key in zip(hours, keys, strict=True):
        stored = [json.loads(line) for line in gzip.decompress(s3_bucket.read(key)).decode().splitlines()]
        assert stored == list(cloud4wi_simulator.expected_events(start, start + HOUR)), key
