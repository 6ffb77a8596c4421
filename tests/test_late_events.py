"""Late events: the reconcile example re-exports the trailing hours, so events that reached the API
after their hour was exported land in that hour's object, once, and no other hour is touched."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storage_servers import BucketView, data_keys

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"
UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
FIRST_HOUR = dt.datetime(2024, 1, 2, 0, tzinfo=UTC)
# The API holds only the first half of the third hour when the hourly DAG exports it.
PUBLISHED_AT_FIRST = FIRST_HOUR + 2 * HOUR + HOUR / 2


def hour_key(organization_id: str, start: dt.datetime) -> str:
    """The default key of the hour starting at ``start``, spelled out."""
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start:%Y-%m-%d}/"
        f"events_{start:%Y%m%dT%H%M%SZ}_{start + HOUR:%Y%m%dT%H%M%SZ}.jsonl.gz"
    )


def stored_events(bucket: BucketView, key: str) -> list[dict[str, Any]]:
    """The events of one gzip JSON Lines object."""
    return [json.loads(line) for line in gzip.decompress(bucket.read(key)).decode("utf-8").splitlines()]


@pytest.fixture
def half_published(cloud4wi_simulator_factory: Any, connect: Callable[..., str]) -> Cloud4WiSimulator:
    """A simulator whose data stops half-way through the third hour, behind ``cloud4wi_default``."""
    simulator = cloud4wi_simulator_factory(data_end=PUBLISHED_AT_FIRST)
    connect(simulator)
    return simulator


def test_the_reconcile_run_lands_late_events_once_and_leaves_older_hours_alone(
    half_published: Cloud4WiSimulator,
    publish_until: Callable[[Cloud4WiSimulator, dt.datetime], Cloud4WiSimulator],
    s3_bucket: BucketView,
    monkeypatch: pytest.MonkeyPatch,
    run_dag: Callable[..., Any],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_S3_BUCKET", s3_bucket.name)
    monkeypatch.setenv("CLOUD4WI_LOOKBACK_HOURS", "1")
    org = half_published.organization_id
    hourly = (EXAMPLE_DAGS / "cloud4wi_events_to_s3.py").read_text()
    for n in range(3):
        assert run_dag(hourly, "cloud4wi_events_to_s3", FIRST_HOUR + (n + 1) * HOUR).state == "success"
    third = FIRST_HOUR + 2 * HOUR
    exported_early = stored_events(s3_bucket, hour_key(org, third))
    # Outside the lookback: the reconcile run must not rewrite it.
    s3_bucket.put(hour_key(org, FIRST_HOUR), b"the first hour, as exported before")
    complete = publish_until(half_published, dt.datetime(2024, 1, 8, tzinfo=UTC))

    run = run_dag((EXAMPLE_DAGS / "cloud4wi_reconcile.py").read_text(), "cloud4wi_reconcile", third + HOUR)

    assert run.state == "success"
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "export_hour"]
    assert sorted(ti.map_index for ti in mapped) == [0, 1]
    assert data_keys(s3_bucket) == [hour_key(org, FIRST_HOUR + n * HOUR) for n in range(3)]
    assert s3_bucket.read(hour_key(org, FIRST_HOUR)) == b"the first hour, as exported before"
    for start in (FIRST_HOUR + HOUR, third):
        expected = list(complete.expected_events(start, start + HOUR))
        assert stored_events(s3_bucket, hour_key(org, start)) == expected
    late = list(complete.expected_events(PUBLISHED_AT_FIRST, third + HOUR))
    assert late, "the simulator published no event in the hour's second half"
    assert stored_events(s3_bucket, hour_key(org, third)) == exported_early + late
