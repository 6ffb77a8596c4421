"""Asset events: an export's outlets carry what it landed, and a DAG scheduled on them reads it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storage_servers import BucketView

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"
UTC = dt.timezone.utc

_ALIAS_DAG = """
import datetime as dt

from airflow.providers.common.compat.assets import AssetAlias
from airflow.providers.common.compat.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

BY_KEY = AssetAlias("cloud4wi_exports_by_key")

with DAG(
    dag_id="cloud4wi_alias_export",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    export = Cloud4WiEventsToS3Operator(task_id="export", s3_bucket="{bucket}", outlets=[BY_KEY])

    @task(inlets=[BY_KEY])
    def landed(inlet_events=None):
        return [
            {{"uri": getattr(event, "uri", None) or event.asset.uri, "extra": dict(event.extra)}}
            for event in inlet_events[BY_KEY]
        ]

    export >> landed()
"""


def hour_key(organization_id: str, start: dt.datetime) -> str:
    """The default key of the hour starting at ``start``, spelled out."""
    end = start + dt.timedelta(hours=1)
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start:%Y-%m-%d}/"
        f"events_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.jsonl.gz"
    )


def _airflow_2() -> bool:
    from airflow import __version__

    return __version__.startswith("2.")


@pytest.fixture
def run_dag_with_assets(run_dag: Callable[..., Any], airflow_home: Path) -> Callable[..., Any]:
    """
    ``run_dag``, after declaring the DAG's assets to the metadata database on Airflow 2.11.

    Airflow 2.11's ``dag.test()`` does not write the DAG to the database, and records no dataset
    event (nor alias) that is not there; Airflow 3's syncs the DAG first.
    """

    def run(source: str, dag_id: str, logical_date: dt.datetime) -> Any:
        if _airflow_2():
            from airflow.models.dagbag import DagBag

            path = airflow_home / "dags" / f"{dag_id}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(source)
            DagBag(dag_folder=str(path), include_examples=False).sync_to_db()
        return run_dag(source, dag_id, logical_date)

    return run


@pytest.fixture
def simulator(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator, behind connection ``cloud4wi_default``."""
    return cloud4wi_simulator


def test_the_consumer_example_reads_what_the_hourly_export_landed_from_the_asset_event(
    simulator: Cloud4WiSimulator,
    s3_bucket: BucketView,
    monkeypatch: pytest.MonkeyPatch,
    run_dag_with_assets: Callable[..., Any],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_S3_BUCKET", s3_bucket.name)
    start = dt.datetime(2024, 1, 4, 7, tzinfo=UTC)
    key = hour_key(simulator.organization_id, start)

    producer = run_dag_with_assets(
        (EXAMPLE_DAGS / "cloud4wi_events_to_s3.py").read_text(),
        "cloud4wi_events_to_s3",
        start + dt.timedelta(hours=1),
    )
    consumer = run_dag_with_assets(
        (EXAMPLE_DAGS / "cloud4wi_events_consumer.py").read_text(),
        "cloud4wi_events_consumer",
        start + dt.timedelta(hours=2),
    )

    assert (producer.state, consumer.state) == ("success", "success")
    seen = consumer.get_task_instance("summarize_export").xcom_pull(task_ids="summarize_export")
    assert seen == {
        "organization_id": simulator.organization_id,
        "window_start": "2024-01-04T07:00:00+00:00",
        "window_end": "2024-01-04T08:00:00+00:00",
        "event_count": len(list(simulator.expected_events(start, start + dt.timedelta(hours=1)))),
        "bytes": len(s3_bucket.read(key)),
        "objects": [f"s3://{s3_bucket.name}/{key}"],
    }


def test_an_asset_alias_outlet_gets_the_asset_of_the_runs_object_with_what_it_holds(
    simulator: Cloud4WiSimulator, s3_bucket: BucketView, run_dag_with_assets: Callable[..., Any]
) -> None:
    start = dt.datetime(2024, 1, 5, 12, tzinfo=UTC)
    key = hour_key(simulator.organization_id, start)

    run = run_dag_with_assets(
        _ALIAS_DAG.format(bucket=s3_bucket.name), "cloud4wi_alias_export", start + dt.timedelta(hours=1)
    )

    assert run.state == "success"
    landed = run.get_task_instance("landed").xcom_pull(task_ids="landed")
    uri = f"s3://{s3_bucket.name}/{key}"
    assert landed == [
        {
            "uri": uri,
            "extra": {
                "organization_id": simulator.organization_id,
                "window_start": "2024-01-05T12:00:00+00:00",
                "window_end": "2024-01-05T13:00:00+00:00",
                "event_count": len(list(simulator.expected_events(start, start + dt.timedelta(hours=1)))),
                "bytes": len(s3_bucket.read(key)),
                "objects": [uri],
                "manifest": uri.replace(".jsonl.gz", ".manifest.json"),
            },
        }
    ]
