"""
Hourly export with a lookback: each run also re-exports the hours before it, for late events.

An event can reach the API after its hour was exported (a visit is created when the contact
leaves, a device syncs late). Each run of this DAG exports the hour that just ended *and* the
``CLOUD4WI_LOOKBACK_HOURS`` hours before it, one mapped task per hour (a failed hour is retried
alone). Every hour is written under the same Hive-style key as in ``cloud4wi_events_to_s3``, so a
re-export replaces that hour's object with its now complete events: no duplicate, and no other
hour's object is touched.

Choose the lookback to cover how late events arrive in your organization; each run makes
``1 + CLOUD4WI_LOOKBACK_HOURS`` pulls. Run this DAG instead of ``cloud4wi_events_to_s3`` (or
alongside it: both write the same keys).

Settings, all optional: the Airflow Variable ``cloud4wi_s3_bucket`` (default ``cloud4wi-events``),
and in the environment, read when the file is parsed, ``CLOUD4WI_LOOKBACK_HOURS`` (default 6),
``CLOUD4WI_CONN_ID``, ``CLOUD4WI_AWS_CONN_ID``, ``CLOUD4WI_EXAMPLE_START_DATE`` and
``CLOUD4WI_EXAMPLE_END_DATE``, as in ``cloud4wi_events_to_s3``.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

DEFAULT_S3_BUCKET = "cloud4wi-events"
CLOUD4WI_CONN_ID = os.environ.get("CLOUD4WI_CONN_ID", "cloud4wi_default")
AWS_CONN_ID = os.environ.get("CLOUD4WI_AWS_CONN_ID", "aws_default")
LOOKBACK_HOURS = int(os.environ.get("CLOUD4WI_LOOKBACK_HOURS", "6"))
HOUR = dt.timedelta(hours=1)


def _env_datetime(name: str, default: str | None) -> dt.datetime | None:
    """Read an aware ISO 8601 date-time from the environment (UTC when no offset is given)."""
    text = os.environ.get(name) or default
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def trailing_windows(end: dt.datetime, count: int, step: dt.timedelta) -> list[dict[str, str]]:
    """
    The ``count`` consecutive windows of ``step`` that end at ``end``, oldest first.

    Each window is the keyword arguments of one mapped export (ISO 8601 ``window_start`` and
    ``window_end``); neighbours share their bound, so the windows tile ``[end - count * step, end)``.
    """
    starts = [end - (count - n) * step for n in range(count)]
    return [{"window_start": start.isoformat(), "window_end": (start + step).isoformat()} for start in starts]


with DAG(
    dag_id="cloud4wi_reconcile",
    description="Export each hour of Cloud4Wi events to S3 and re-export the hours before it.",
    # CronDataIntervalTimetable gives each run the hour that just ended, on Airflow 2 and 3 alike.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=_env_datetime("CLOUD4WI_EXAMPLE_START_DATE", "2024-01-01T00:00:00+00:00"),
    end_date=_env_datetime("CLOUD4WI_EXAMPLE_END_DATE", None),
    catchup=False,
    # Two runs re-exporting the same hour at once would race for its object.
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["cloud4wi", "example"],
    doc_md=__doc__,
):

    @task
    def hours_to_export(data_interval_end: dt.datetime | None = None) -> list[dict[str, str]]:
        """The run's hour and the ``LOOKBACK_HOURS`` hours before it, one mapped export each."""
        if data_interval_end is None:
            raise ValueError("This task needs a data interval: run it from a scheduled or manual run.")
        return trailing_windows(data_interval_end, 1 + LOOKBACK_HOURS, HOUR)

    Cloud4WiEventsToS3Operator.partial(
        task_id="export_hour",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        s3_bucket="{{ var.value.get('cloud4wi_s3_bucket', '" + DEFAULT_S3_BUCKET + "') }}",
        max_active_tis_per_dagrun=4,
    ).expand_kwargs(hours_to_export())
