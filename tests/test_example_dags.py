"""The example DAGs: they parse cleanly on this Airflow, and each one, run by Airflow, exports the
simulator's events of its interval, every event once."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storage_servers import BucketView, assert_committed_once

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"
UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

# Parses the examples with a DagBag in a fresh interpreter, so every module the examples import is
# imported for the first time inside the DagBag, which records the warnings each file raised.
_PARSE_SCRIPT = textwrap.dedent(
    """
    import inspect, json, sys
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    options = {}
    if "include_examples" in inspect.signature(DagBag.__init__).parameters:
        options["include_examples"] = False
    bag = DagBag(dag_folder=sys.argv[1], **options)
    print(json.dumps({
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "warnings": {str(k): list(v) for k, v in bag.captured_warnings.items()},
        "dag_ids": sorted(bag.dag_ids),
    }))
    """
)


def parse_examples(folder: Path) -> dict[str, Any]:
    """Parse every DAG file of ``folder`` in a new Python process with all warnings enabled."""
    env = {**os.environ, "PYTHONWARNINGS": "always"}
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def parsed_examples() -> dict[str, Any]:
    """The DagBag report of the example_dags folder."""
    return parse_examples(EXAMPLE_DAGS)


def _has_partitioned_timetables() -> bool:
    try:
        from airflow.sdk import CronPartitionTimetable  # noqa: F401
    except ImportError:
        return False
    return True


def test_every_example_file_imports_without_an_error(parsed_examples: dict[str, Any]) -> None:
    # The partitioned pair defines its DAGs only where partitioned timetables exist (Airflow 3.2+).
    partitioned = ["cloud4wi_partitioned_daily", "cloud4wi_partitioned_export"]
    assert parsed_examples["import_errors"] == {}
    assert parsed_examples["dag_ids"] == sorted(
        [
            "cloud4wi_backfill",
            "cloud4wi_events_consumer",
            "cloud4wi_events_to_gcs",
            "cloud4wi_events_to_s3",
            "cloud4wi_reconcile",
            *(partitioned if _has_partitioned_timetables() else []),
        ]
    )


def test_every_example_file_imports_without_a_warning(parsed_examples: dict[str, Any]) -> None:
    assert parsed_examples["warnings"] == {}


def test_the_import_check_reports_a_deprecated_import(tmp_path: Path) -> None:
    # Guards the check above: a DAG file that warns on import must show up in the report.
    (tmp_path / "warns.py").write_text(
        "import warnings\n"
        "from airflow.providers.common.compat.sdk import DAG\n"
        "warnings.warn('old API', DeprecationWarning, stacklevel=1)\n"
        "DAG(dag_id='warns', schedule=None)\n"
    )
    assert list(parse_examples(tmp_path)["warnings"]) == [str(tmp_path / "warns.py")]


# ------------------------------------------------------------------------------------ runs
def example_source(name: str) -> str:
    """The text of an example DAG file."""
    return (EXAMPLE_DAGS / name).read_text()


def default_key(organization_id: str, start: dt.datetime, end: dt.datetime) -> str:
    """The Hive-style key the examples write a window to, spelled out."""
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start:%Y-%m-%d}/"
        f"events_{start.strftime(stamp)}_{end.strftime(stamp)}.jsonl.gz"
    )


def stored_events(bucket: BucketView, key: str) -> list[dict[str, Any]]:
    """The events of one gzip JSON Lines object."""
    return [json.loads(line) for line in gzip.decompress(bucket.read(key)).decode("utf-8").splitlines()]


def hourly_keys(organization_id: str, start: dt.datetime, hours: int) -> list[str]:
    """The keys of ``hours`` consecutive hours from ``start``, in order."""
    return [default_key(organization_id, start + n * HOUR, start + (n + 1) * HOUR) for n in range(hours)]


def assert_each_hour_stored_once(
    bucket: BucketView, simulator: Cloud4WiSimulator, first_hour: dt.datetime, hours: int
) -> None:
    """The bucket holds exactly one object per hour, each with exactly that hour's events."""
    keys = hourly_keys(simulator.organization_id, first_hour, hours)
    assert_committed_once(bucket, keys)
    for n, key in enumerate(keys):
        start = first_hour + n * HOUR
        assert stored_events(bucket, key) == list(simulator.expected_events(start, start + HOUR))


@pytest.fixture
def simulator(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator (2024-01-01 to 2024-01-08), behind connection ``cloud4wi_default``."""
    return cloud4wi_simulator


def run_example_hours(
    run_dag: Callable[..., Any], file_name: str, dag_id: str, first_hour: dt.datetime, hours: int
) -> list[Any]:
    """Run an hourly example for ``hours`` consecutive intervals from ``first_hour``; return the runs."""
    source = example_source(file_name)
    # The run at logical date T covers [T - 1h, T), as `airflow dags test <dag> T` does.
    return [run_dag(source, dag_id, first_hour + (n + 1) * HOUR) for n in range(hours)]


def test_three_hourly_s3_runs_store_each_hour_once_with_exactly_its_events(
    simulator: Cloud4WiSimulator,
    s3_bucket: BucketView,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_S3_BUCKET", s3_bucket.name)
    first_hour = dt.datetime(2024, 1, 2, 0, tzinfo=UTC)

    runs = run_example_hours(run_dag, "cloud4wi_events_to_s3.py", "cloud4wi_events_to_s3", first_hour, 3)

    assert [run.state for run in runs] == ["success"] * 3
    assert_each_hour_stored_once(s3_bucket, simulator, first_hour, 3)


def test_three_hourly_gcs_runs_store_each_hour_once_with_exactly_its_events(
    simulator: Cloud4WiSimulator,
    gcs_bucket: BucketView,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_GCS_BUCKET", gcs_bucket.name)
    first_hour = dt.datetime(2024, 1, 5, 21, tzinfo=UTC)

    runs = run_example_hours(run_dag, "cloud4wi_events_to_gcs.py", "cloud4wi_events_to_gcs", first_hour, 3)

    assert [run.state for run in runs] == ["success"] * 3
    assert_each_hour_stored_once(gcs_bucket, simulator, first_hour, 3)


def test_a_daily_backfill_run_maps_the_day_into_24_hourly_objects_without_gap_or_duplicate(
    simulator: Cloud4WiSimulator,
    s3_bucket: BucketView,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_S3_BUCKET", s3_bucket.name)
    day = dt.datetime(2024, 1, 3, tzinfo=UTC)

    run = run_dag(example_source("cloud4wi_backfill.py"), "cloud4wi_backfill", day + DAY)

    assert run.state == "success"
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "export_hour"]
    assert sorted(ti.map_index for ti in mapped) == list(range(24))
    keys = hourly_keys(simulator.organization_id, day, 24)
    assert_committed_once(s3_bucket, keys)
    stored = [event for key in keys for event in stored_events(s3_bucket, key)]
    assert stored == list(simulator.expected_events(day, day + DAY))
    summary = run.get_task_instance("summarize_day").xcom_pull(task_ids="summarize_day")
    assert summary["event_count"] == len(stored)
