"""
Daily load of Cloud4Wi history into S3, one mapped task per hour of the day.

A run covers one UTC day. ``hourly_windows`` splits it into its 24 hours and the export is mapped
over them (dynamic task mapping), so the executor spreads the hours over its workers and a failed
hour is retried alone. Each hour is written under the same Hive-style key as in the hourly
``cloud4wi_events_to_s3`` DAG, so both DAGs can fill one bucket: an hour exported twice keeps a
single object, the one written last.

Load a week of history with ``airflow backfill create --dag-id cloud4wi_backfill --from-date
2024-01-01 --to-date 2024-01-07`` on Airflow 3, or ``airflow dags backfill -s 2024-01-01 -e
2024-01-07 cloud4wi_backfill`` on Airflow 2.11. ``max_active_runs`` and
``max_active_tis_per_dagrun`` bound how hard that hits the API.

Settings, all optional: the Airflow Variable ``cloud4wi_s3_bucket`` (default ``cloud4wi-events``),
and in the environment ``CLOUD4WI_CONN_ID``, ``CLOUD4WI_AWS_CONN_ID``,
``CLOUD4WI_EXAMPLE_START_DATE`` and ``CLOUD4WI_EXAMPLE_END_DATE``, as in ``cloud4wi_events_to_s3``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterable
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

DEFAULT_S3_BUCKET = "cloud4wi-events"
CLOUD4WI_CONN_ID = os.environ.get("CLOUD4WI_CONN_ID", "cloud4wi_default")
AWS_CONN_ID = os.environ.get("CLOUD4WI_AWS_CONN_ID", "aws_default")
SUB_WINDOW = dt.timedelta(hours=1)


def _env_datetime(name: str, default: str | None) -> dt.datetime | None:
    """Read an aware ISO 8601 date-time from the environment (UTC when no offset is given)."""
    text = os.environ.get(name) or default
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def split_interval(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[dict[str, str]]:
    """
    Cut ``[start, end)`` into consecutive windows of ``step`` (the last one may be shorter).

    Each window is the keyword arguments of one mapped export: ``window_start`` and ``window_end``
    as ISO 8601 text. Consecutive windows share their bound, so together they cover the interval
    with no gap and no overlap.
    """
    windows = []
    cursor = start
    while cursor < end:
        window_end = min(cursor + step, end)
        windows.append({"window_start": cursor.isoformat(), "window_end": window_end.isoformat()})
        cursor = window_end
    return windows


with DAG(
    dag_id="cloud4wi_backfill",
    description="Export each day of Cloud4Wi events to S3, one mapped task per hour.",
    # A plain cron string on Airflow 3 becomes a trigger timetable whose runs have
    # data_interval_start == data_interval_end, which leaves no day to split.
    # CronDataIntervalTimetable gives each run the UTC day that just ended, on Airflow 2 and 3 alike.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=_env_datetime("CLOUD4WI_EXAMPLE_START_DATE", "2024-01-01T00:00:00+00:00"),
    end_date=_env_datetime("CLOUD4WI_EXAMPLE_END_DATE", None),
    catchup=True,
    max_active_runs=2,
    max_active_tasks=16,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["cloud4wi", "example"],
    doc_md=__doc__,
):
    wait_for_day = Cloud4WiEventsSensor(
        task_id="wait_for_day",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        settle_delay=dt.timedelta(minutes=15),
        poke_interval=300,
        # A day without any event is possible too: after an hour, stop waiting (skip) and export anyway.
        timeout=3600,
        soft_fail=True,
        deferrable=True,
    )

    @task(trigger_rule="none_failed")
    def hourly_windows(
        data_interval_start: dt.datetime | None = None, data_interval_end: dt.datetime | None = None
    ) -> list[dict[str, str]]:
        """The run's day as 24 hourly windows, one per mapped export."""
        if data_interval_start is None or data_interval_end is None:
            raise ValueError("This task needs a data interval: run it from a scheduled or backfill run.")
        return split_interval(data_interval_start, data_interval_end, SUB_WINDOW)

    @task
    def summarize_day(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Check that the hourly exports tile the day, and total what they wrote."""
        exports = sorted(results, key=lambda result: str(result["window_start"]))
        for before, after in itertools.pairwise(exports):
            if before["window_end"] != after["window_start"]:
                raise ValueError(
                    f"Exports do not tile the day: {before['window_end']} then {after['window_start']}."
                )
        return {
            "objects": [uri for result in exports for uri in result["objects"]],
            "event_count": sum(int(result["event_count"]) for result in exports),
            "bytes": sum(int(result["bytes"]) for result in exports),
        }

    windows = hourly_windows()
    export_hour = Cloud4WiEventsToS3Operator.partial(
        task_id="export_hour",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        s3_bucket="{{ var.value.get('cloud4wi_s3_bucket', '" + DEFAULT_S3_BUCKET + "') }}",
        max_active_tis_per_dagrun=8,
    ).expand_kwargs(windows)
    wait_for_day >> windows
    # At run time the mapped exports' results arrive as a sequence of their return values.
    summarize_day(export_hour.output)  # type: ignore[arg-type]
