"""Fixtures for the transfer tests: one storage case per backend, operators wired to it."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import OpenLineageLog, PartitionRun, StorageCase

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator


def _s3_case(request: pytest.FixtureRequest) -> StorageCase:
    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

    return StorageCase(
        bucket=request.getfixturevalue("s3_bucket"),
        operator_class=Cloud4WiEventsToS3Operator,
        bucket_param="s3_bucket",
        key_param="s3_key",
        upload_method=(Cloud4WiEventsToS3Operator, "upload_file"),
    )


def _gcs_case(request: pytest.FixtureRequest) -> StorageCase:
    from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator

    return StorageCase(
        bucket=request.getfixturevalue("gcs_bucket"),
        operator_class=Cloud4WiEventsToGCSOperator,
        bucket_param="bucket",
        key_param="object_name",
        upload_method=(Cloud4WiEventsToGCSOperator, "upload_file"),
    )


_CASES: dict[str, Callable[[pytest.FixtureRequest], StorageCase]] = {"s3": _s3_case, "gcs": _gcs_case}


@pytest.fixture(params=sorted(_CASES))
def storage(request: pytest.FixtureRequest, cloud4wi_conn_id: str) -> StorageCase:
    """Each storage backend in turn, with a fresh bucket and the simulator's connection defined."""
    return _CASES[request.param](request)


@pytest.fixture
def sim(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator, with connection ``cloud4wi_default`` pointing at it."""
    return cloud4wi_simulator


@pytest.fixture
def default_key_of(sim: Cloud4WiSimulator) -> Callable[..., str]:
    """The Hive-style key the operators use by default for a window (spelled out, not computed)."""

    def key(start: dt.datetime, end: dt.datetime, extension: str = ".jsonl.gz") -> str:
        stamp = "%Y%m%dT%H%M%SZ"
        return (
            f"cloud4wi/events/organization_id={sim.organization_id}/date={start:%Y-%m-%d}/"
            f"events_{start.strftime(stamp)}_{end.strftime(stamp)}{extension}"
        )

    return key


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the operators' local temporary files appear under a directory the test can inspect."""
    root = tmp_path / "operator-temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def dags_test(airflow_db: Path, airflow_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """
    Run a DAG with ``airflow dags test`` in a new process, as an operator of Airflow would.

    A new process loads Airflow's plugins (OpenLineage's listener among them) with the environment
    the test set, which an in-process ``dag.test()`` cannot promise once another test loaded them.
    Returns the finished process; its output is the run's log.
    """
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)

    def run(
        source: str, dag_id: str, logical_date: dt.datetime, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        (dags / f"{dag_id}.py").write_text(source)
        airflow = str(Path(sys.executable).with_name("airflow"))
        return subprocess.run(
            [airflow, "dags", "test", dag_id, logical_date.isoformat()],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run


@pytest.fixture
def openlineage_log(tmp_path: Path) -> OpenLineageLog:
    """A fresh OpenLineage event log for one test."""
    return OpenLineageLog(tmp_path / "openlineage.jsonl")


@pytest.fixture
def run_partition(run_dag: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """
    Run a DAG through ``dag.test()`` as the run of one partition (Airflow 3.2+); returns the DagRun.

    ``dag.test()`` creates a manual run without a partition; the scheduler gives a
    ``CronPartitionTimetable`` run its partition key and date, and a ``PartitionedAssetTimetable``
    run the asset events it consumed. This sets the same fields on the run ``dag.test()`` creates,
    before its tasks start, so the tasks see what they would see when scheduled.
    """
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    create_run = dagrun_module.get_or_create_dagrun
    current: list[PartitionRun] = []

    def create_partition_run(**kwargs: Any) -> Any:
        run, session = create_run(**kwargs), kwargs["session"]
        (partition,) = current
        run.partition_key, run.partition_date = partition.key, partition.date
        if partition.consumed_partitions:
            consumed = select(AssetEvent).where(AssetEvent.partition_key.in_(partition.consumed_partitions))
            run.consumed_asset_events = list(session.scalars(consumed))
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", create_partition_run)

    def run(source: str, dag_id: str, logical_date: dt.datetime, partition: PartitionRun) -> Any:
        current[:] = [partition]
        return run_dag(source, dag_id, logical_date)

    return run


# ----------------------------------------------------------------------------- crash and concurrency tests
@pytest.fixture
def start_dag_run(airflow_db: Path, airflow_home: Path, tmp_path: Path) -> Any:
    """
    Start ``airflow dags test`` on a DAG in a new process (its own process group) without waiting.

    Each process gets its own copy of the migrated metadata database: two processes writing one
    SQLite file at once fail with "database is locked" on a busy machine, and the guarantees under
    test live in the bucket, not in Airflow's database. Returns a :class:`crash_tools.DagProcess`
    to wait on or SIGKILL; every run still alive at the end of the test is killed.
    """
    from crash_tools import DagProcess, start_dags_test

    started: list[DagProcess] = []

    def start(source: str, dag_id: str, logical_date: dt.datetime, env: dict[str, str]) -> DagProcess:
        log = tmp_path / f"{dag_id}-{len(started)}.log"
        database = tmp_path / f"{dag_id}-{len(started)}.db"
        # SQLite's backup API, not a file copy: the migrated schema may still sit in the WAL file.
        with (
            contextlib.closing(sqlite3.connect(airflow_db)) as migrated,
            contextlib.closing(sqlite3.connect(database)) as private,
        ):
            migrated.backup(private)
        env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}", **env}
        run = start_dags_test(airflow_home / "dags", source, dag_id, logical_date, env, log)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()
