"""
A real CeleryExecutor backfill of the daily example: PostgreSQL, Redis and two Celery workers.

The topology of ``docker-compose.yaml``, from the distribution's packages instead of images:
PostgreSQL (metadata database and Celery result backend), Redis (the broker), and Airflow 3's
api-server, scheduler, dag-processor, triggerer and two ``airflow celery worker`` processes, all
on 127.0.0.1 with the environment and commands of ``devtools/airflow_stack.py``. The two workers
share this machine, so each reports its own hostname through ``[core] hostname_callable``.

``airflow backfill create`` asks for one day of ``cloud4wi_backfill``: the deferrable sensor, then
24 mapped hourly exports. The sensor's first check meets a failing API (the simulator answers 503
to everything), so it defers; the test starts the triggerer only once the task is deferred and
the API healthy again, so the trigger's first check is the one that succeeds (the example's
5-minute poke interval would otherwise make the test wait). The test then checks that both
workers ran tasks, that every hour's object holds exactly the simulator's events, and that a
second backfill of the same day, reprocessing the completed run, rewrites the same bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration_stack import (
    EXAMPLE_DAGS,
    HOUR,
    REPO,
    airflow_major,
    answers,
    example_connections,
    hour_key,
    postgres_fixture,  # noqa: F401  (the fixture "postgres")
    redis_fixture,  # noqa: F401  (the fixture "redis")
    require_celery_on_postgres,
    wait_until,
)
from storage_servers import LocalServer, S3BucketView, assert_committed_once, data_keys

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.testing.simulator import Faults
from devtools.airflow_stack import (
    CELERY_WORKERS,
    COMMANDS,
    HOSTNAME_CALLABLE,
    POSTGRES_DB,
    POSTGRES_USER,
    AirflowProcesses,
    LocalService,
    celery_environment,
    clean_environment,
)
from devtools.servers import HOST, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.airflow3_only,
    pytest.mark.skipif(airflow_major() < 3, reason="`airflow backfill create` needs Airflow 3."),
]

DAG_ID = "cloud4wi_backfill"
DAY = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
WORKERS = tuple(f"worker-{number}" for number in range(1, CELERY_WORKERS + 1))
SENSOR = "wait_for_day"
EXPORT = "export_hour"
# Generous: they only bound a hung deployment; a healthy one goes on as soon as it is ready.
STARTUP_TIMEOUT_SECONDS = 420.0
DEFER_TIMEOUT_SECONDS = 300.0
BACKFILL_TIMEOUT_SECONDS = 900.0
#: Every API request fails (login included) for as long as the sensor must see a failing API.
BROKEN_API = Faults(server_error=1.0, max_consecutive_faults=1_000_000)


@dataclass
class CeleryDeployment(AirflowProcesses):
    """The Airflow components of the test plus direct reads of its PostgreSQL metadata database."""

    postgres_port: int = 0

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of the metadata database."""
        import psycopg2

        db = psycopg2.connect(host=HOST, port=self.postgres_port, user=POSTGRES_USER, dbname=POSTGRES_DB)
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            db.close()

    def task_instances(self) -> list[tuple[str, int, str, str, int]]:
        """``(task_id, map_index, state, hostname, try_number)`` of every task of the DAG's runs."""
        return self.query(
            "SELECT task_id, map_index, state, hostname, try_number FROM task_instance"
            " WHERE dag_id = %s ORDER BY task_id, map_index",
            DAG_ID,
        )

    def run_states(self) -> list[str]:
        """The states of the DAG's backfill runs."""
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_type = 'backfill'", DAG_ID)
        return [str(state) for (state,) in rows]

    def backfills_running(self) -> int:
        """How many of the DAG's backfills the scheduler has not marked complete yet."""
        rows = self.query("SELECT COUNT(*) FROM backfill WHERE dag_id = %s AND completed_at IS NULL", DAG_ID)
        return int(rows[0][0])

    def trigger_logs(self) -> str:
        """What the triggerer logged for the sensor's triggers."""
        task_logs = self.home / "logs" / f"dag_id={DAG_ID}"
        return "".join(
            path.read_text() for path in sorted(task_logs.glob(f"*/task_id={SENSOR}/*.trigger.*.log"))
        )

    def sensor_state(self) -> str | None:
        """The state of the sensor's task instance, if it exists yet."""
        rows = self.query(
            "SELECT state FROM task_instance WHERE dag_id = %s AND task_id = %s", DAG_ID, SENSOR
        )
        return str(rows[0][0]) if rows else None


def deployment_env(
    home: Path, postgres: LocalService, redis: LocalService, api_port: int, connections: dict[str, str]
) -> dict[str, str]:
    """The shared Celery environment on loopback, plus this test's home, DAG and connections."""
    env = clean_environment()
    env.update(
        celery_environment(postgres=postgres.address, redis=redis.address, api_server=f"{HOST}:{api_port}")
    )
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "cloud4wi-celery-test-secret",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Only the backfill creates runs: the scheduler's own catch-up from start_date is off.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The scheduler's health check, on loopback: it tells when the scheduler is up.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            # Two workers on one machine: each task instance records its worker's own name.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
            "PYTHONPATH": str(REPO),
            **connections,
        }
    )
    return env


def start_components(airflow: CeleryDeployment, api_port: int) -> None:
    """Start everything but the triggerer (see the module docstring)."""
    airflow.start("api-server", *COMMANDS["api-server"], "--host", HOST, "--port", str(api_port))
    airflow.start("scheduler", *COMMANDS["scheduler"])
    airflow.start("dag-processor", *COMMANDS["dag-processor"])
    for worker in WORKERS:
        airflow.start(
            worker,
            *COMMANDS["celery-worker"],
            # Celery's node name; serving logs is skipped (it would bind every interface, one port).
            "--celery-hostname", f"{worker}@%h",
            "--skip-serve-logs",
            env={"CLOUD4WI_WORKER_HOSTNAME": worker},
        )  # fmt: skip


def start_triggerer(airflow: CeleryDeployment) -> None:
    """Start the triggerer (its log server, which binds every interface, skipped)."""
    airflow.start("triggerer", *COMMANDS["triggerer"], "--skip-serve-logs")


def is_ready(airflow: CeleryDeployment, api_port: int, health_port: str) -> bool:
    """Whether the api-server and scheduler answer, the DAG is stored unpaused and both workers wait."""
    return (
        answers(f"http://{HOST}:{api_port}/api/v2/version")
        and answers(f"http://{HOST}:{health_port}/health")
        and bool(airflow.query("SELECT 1 FROM dag WHERE dag_id = %s AND NOT is_paused", DAG_ID))
        and all(f"{worker}@" in airflow.log(worker).read_text(errors="replace") for worker in WORKERS)
        and all(" ready." in airflow.log(worker).read_text(errors="replace") for worker in WORKERS)
    )


@pytest.fixture
def deployment(
    tmp_path: Path,
    postgres: LocalService,
    redis: LocalService,
    cloud4wi_simulator: Cloud4WiSimulator,
    moto_server: LocalServer,
    s3_bucket: S3BucketView,
) -> Iterator[CeleryDeployment]:
    """The Celery deployment, migrated and ready, the triggerer not started yet; stopped after."""
    require_celery_on_postgres()
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(EXAMPLE_DAGS / f"{DAG_ID}.py", home / "dags")
    api_port = free_port()
    connections = example_connections(cloud4wi_simulator, moto_server.url, s3_bucket.name)
    env = deployment_env(home, postgres, redis, api_port, connections)
    airflow = CeleryDeployment(home=home, env=env, postgres_port=postgres.port)
    airflow.run("db-migrate", "db", "migrate")
    try:
        start_components(airflow, api_port)
        health_port = airflow.env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"]
        wait_until(
            airflow, lambda: is_ready(airflow, api_port, health_port), "Airflow", STARTUP_TIMEOUT_SECONDS
        )
        yield airflow
    finally:
        airflow.stop()


def backfill(airflow: CeleryDeployment, name: str, *options: str) -> None:
    """``airflow backfill create`` of the one day."""
    day = DAY.isoformat()
    airflow.run(
        name, "backfill", "create", "--dag-id", DAG_ID, "--from-date", day, "--to-date", day, *options
    )


def backfill_done(airflow: CeleryDeployment) -> bool:
    """Whether every backfill run has ended and the scheduler has closed the backfill.

    Only one backfill of a DAG may run at a time, so a second one is refused until then.
    """
    states = airflow.run_states()
    return bool(states) and set(states) <= {"success", "failed"} and airflow.backfills_running() == 0


def wait_for_runs(airflow: CeleryDeployment) -> list[str]:
    """Wait until the backfill is done; return its runs' states."""
    wait_until(
        airflow,
        lambda: backfill_done(airflow),
        "the backfill",
        BACKFILL_TIMEOUT_SECONDS,
        poll_seconds=2.0,
    )
    return airflow.run_states()


def stored_events(bucket: S3BucketView, key: str) -> list[dict[str, Any]]:
    """The events of one exported object."""
    return [json.loads(line) for line in gzip.decompress(bucket.read(key)).decode().splitlines()]


def test_a_one_day_backfill_on_celery_spreads_the_hours_over_both_workers_and_reruns_identically(
    deployment: CeleryDeployment, cloud4wi_simulator: Cloud4WiSimulator, s3_bucket: S3BucketView
) -> None:
    cloud4wi_simulator.set_faults(BROKEN_API)
    backfill(deployment, "backfill-create")

    wait_until(
        deployment,
        lambda: deployment.sensor_state() == "deferred",
        "the sensor to defer",
        DEFER_TIMEOUT_SECONDS,
    )
    cloud4wi_simulator.set_faults(Faults())
    start_triggerer(deployment)
    states = wait_for_runs(deployment)

    assert states == ["success"], deployment.diagnostics()
    assert "Trigger fired event" in deployment.trigger_logs()
    assert "'status': 'success'" in deployment.trigger_logs()
    first = deployment.task_instances()
    exports = [row for row in first if row[0] == EXPORT]
    assert [row[1] for row in exports] == list(range(24))
    assert {row[2] for row in first} == {"success"}
    assert {row[3] for row in exports} == set(WORKERS), "both workers ran exports"
    hours = [DAY + n * HOUR for n in range(24)]
    keys = [hour_key(cloud4wi_simulator.organization_id, start) for start in hours]
    assert_committed_once(s3_bucket, keys)
    for start, key in zip(hours, keys, strict=True):
        assert stored_events(s3_bucket, key) == list(cloud4wi_simulator.expected_events(start, start + HOUR))
    before = {key: s3_bucket.read(key) for key in keys}

    backfill(deployment, "backfill-rerun", "--reprocess-behavior", "completed")
    states = wait_for_runs(deployment)

    assert states == ["success"], deployment.diagnostics()
    again = {row[:2]: row for row in deployment.task_instances()}
    assert all(again[row[:2]][4] > row[4] for row in exports), "every export ran again"
    after = data_keys(s3_bucket)
    assert {key: s3_bucket.read(key) for key in after} == before
