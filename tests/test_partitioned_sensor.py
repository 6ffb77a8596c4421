"""The sensor on a partitioned run: a zero-width interval with a partition waits for the partition."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_cloud4wi._compat import AirflowFailException
from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

UTC = dt.timezone.utc
PARTITION_DATE = dt.datetime(2024, 1, 3, 10, tzinfo=UTC)


def zero_width_sensor(**kwargs: Any) -> Cloud4WiEventsSensor:
    """A sensor whose rendered window is zero-width, as on a CronPartitionTimetable run."""
    return Cloud4WiEventsSensor(
        task_id="wait_for_partition",
        window_start=PARTITION_DATE,
        window_end=PARTITION_DATE,
        poke_interval=0.1,
        timeout=30,
        **kwargs,
    )


def partition_context(date: dt.datetime | None) -> Any:
    """The context keys of a partitioned run."""
    return {"partition_key": "2024-01-03T10:00:00", "partition_date": date, "dag": None}


def test_the_sensor_waits_for_the_events_of_the_partition_of_a_zero_width_run(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    sensor = zero_width_sensor(min_events=5, partition_grain=dt.timedelta(hours=1))

    seen = sensor.execute(partition_context(PARTITION_DATE))

    assert seen == 5
    assert (sensor.window_start, sensor.window_end) == (
        "2024-01-03T10:00:00+00:00",
        "2024-01-03T11:00:00+00:00",
    )


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_partition_without_a_date_fails_the_sensor_at_once_naming_the_fix(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str, deferrable: bool
) -> None:
    sensor = zero_width_sensor(deferrable=deferrable)

    with pytest.raises(AirflowFailException, match="pass explicit window_start/window_end"):
        sensor.execute(partition_context(None))
