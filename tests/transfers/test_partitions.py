"""Partitioned runs: a zero-width interval with a partition key exports the partition's window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import PartitionRun, StorageCase, decode_lines, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.windows import ZeroWidthWindowError

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def _has_partitioned_timetables() -> bool:
    try:
        from airflow.sdk import CronPartitionTimetable  # noqa: F401
    except ImportError:
        return False
    return True


needs_partitioned_timetables = pytest.mark.skipif(
    not _has_partitioned_timetables(), reason="partitioned timetables need Airflow 3.2+"
)


def partition_context(key: str, date: dt.datetime | None) -> dict[str, Any]:
    """The context keys of a partitioned run whose data interval is zero-width."""
    return {"partition_key": key, "partition_date": date, "dag": None}


def test_a_zero_width_run_with_a_partition_exports_the_partition_grain(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    operator = storage.operator(
        window_start=hour(2, 3), window_end=hour(2, 3), partition_grain=dt.timedelta(hours=2)
    )

    result = operator.execute(context=partition_context("2024-01-02T03", hour(2, 3)))  # type: ignore[arg-type]

    key = default_key_of(hour(2, 3), hour(2, 5))
    assert storage.data_names() == [key]
    assert decode_lines(storage.bucket.read(key)) == list(sim.expected_events(hour(2, 3), hour(2, 5)))
    assert (result["window_start"], result["window_end"]) == (
        "2024-01-02T03:00:00+00:00",
        "2024-01-02T05:00:00+00:00",
    )


def test_a_partition_without_a_date_or_a_cron_timetable_is_refused_naming_the_fix(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    no_date = storage.operator(window_start=hour(2, 3), window_end=hour(2, 3))
    no_cron = storage.operator(window_start=hour(2, 3), window_end=hour(2, 3))

    with pytest.raises(ValueError, match="has no partition date"):
        no_date.execute(context=partition_context("eu-west", None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass partition_grain"):
        no_cron.execute(context=partition_context("2024-01-02T03", hour(2, 3)))  # type: ignore[arg-type]
    assert storage.object_names() == []


def test_a_zero_width_run_without_a_partition_is_still_refused(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    operator = storage.operator(window_start=hour(2, 3), window_end=hour(2, 3))

    with pytest.raises(ZeroWidthWindowError, match="CronPartitionTimetable"):
        operator.execute(context={"partition_key": None})  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.airflow3_only
@needs_partitioned_timetables
@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_hourly_partitions_are_exported_and_rolled_up_by_the_daily_example(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    monkeypatch: pytest.MonkeyPatch,
    run_partition: Callable[..., Any],
    default_key_of: Callable[..., str],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CLOUD4WI_S3_BUCKET", storage.bucket.name)
    export = (EXAMPLE_DAGS / "cloud4wi_partitioned_export.py").read_text()
    daily = (EXAMPLE_DAGS / "cloud4wi_partitioned_daily.py").read_text()
    hours = [hour(2, 3), hour(2, 4)]
    keys = [f"2024-01-02T{start:%H}:00:00" for start in hours]

    exports = [
        run_partition(
            export, "cloud4wi_partitioned_export", start + dt.timedelta(hours=1), PartitionRun(key, start)
        )
        for start, key in zip(hours, keys, strict=True)
    ]
    day = run_partition(
        daily,
        "cloud4wi_partitioned_daily",
        hour(3, 0),
        PartitionRun("2024-01-02", None, consumed_partitions=keys),
    )

    assert [run.state for run in [*exports, day]] == ["success"] * 3
    objects = [default_key_of(start, start + dt.timedelta(hours=1)) for start in hours]
    assert storage.data_names() == objects
    for start, key in zip(hours, objects, strict=True):
        assert decode_lines(storage.bucket.read(key)) == list(
            sim.expected_events(start, start + dt.timedelta(hours=1))
        )
    assert day.get_task_instance("summarize_day").xcom_pull(task_ids="summarize_day") == {
        "day": "2024-01-02",
        "hours": keys,
        "objects": [storage.uri(key) for key in objects],
        "event_count": len(list(sim.expected_events(hours[0], hours[-1] + dt.timedelta(hours=1)))),
        "bytes": sum(len(storage.bucket.read(key)) for key in objects),
    }
