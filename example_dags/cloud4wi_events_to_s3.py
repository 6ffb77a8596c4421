"""
Hourly export of Cloud4Wi events to Amazon S3 (or any S3-compatible store).

Each run waits, in the triggerer, until the hour that just ended has settled and holds events (an
hour at most: a quiet hour is exported anyway), then writes that hour's events as one gzip JSON
Lines object under a Hive-style key that depends only on the hour::

    s3://<bucket>/cloud4wi/events/organization_id=<cid>/date=2024-01-02/
        events_20240102T000000Z_20240102T010000Z.jsonl.gz

Because the key is a function of the window, a retried, cleared or backfilled hour replaces its
own object: every event lands exactly once, however often an hour runs.

Each export updates the asset ``cloud4wi_events`` with what it landed in the event's extra
(``window_start``, ``window_end``, ``organization_id``, ``event_count``, ``bytes``, ``objects``):
``cloud4wi_events_consumer`` is scheduled on it.

Settings, all optional:

* Airflow Variable ``cloud4wi_s3_bucket`` (UI, ``airflow variables set`` or the environment variable
  ``AIRFLOW_VAR_CLOUD4WI_S3_BUCKET``), read at run time; default ``cloud4wi-events``.
* Environment, read when the file is parsed: ``CLOUD4WI_CONN_ID`` (default ``cloud4wi_default``),
  ``CLOUD4WI_AWS_CONN_ID`` (default ``aws_default``), ``CLOUD4WI_EXAMPLE_START_DATE`` (ISO 8601,
  default ``2024-01-01T00:00:00+00:00``, the start of the simulator's data) and
  ``CLOUD4WI_EXAMPLE_END_DATE`` (ISO 8601, default: none).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

DEFAULT_S3_BUCKET = "cloud4wi-events"
CLOUD4WI_CONN_ID = os.environ.get("CLOUD4WI_CONN_ID", "cloud4wi_default")
AWS_CONN_ID = os.environ.get("CLOUD4WI_AWS_CONN_ID", "aws_default")
# The consumer DAG declares the same asset by the same name.
EXPORTED_EVENTS = Asset("cloud4wi_events")


def _env_datetime(name: str, default: str | None) -> dt.datetime | None:
    """Read an aware ISO 8601 date-time from the environment (UTC when no offset is given)."""
    text = os.environ.get(name) or default
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


with DAG(
    dag_id="cloud4wi_events_to_s3",
    description="Export each hour of Cloud4Wi events to S3 as gzip JSON Lines.",
    # A plain cron string on Airflow 3 becomes a trigger timetable whose runs have
    # data_interval_start == data_interval_end, which leaves no window to export.
    # CronDataIntervalTimetable gives each run the hour that just ended, on Airflow 2 and 3 alike.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=_env_datetime("CLOUD4WI_EXAMPLE_START_DATE", "2024-01-01T00:00:00+00:00"),
    end_date=_env_datetime("CLOUD4WI_EXAMPLE_END_DATE", None),
    catchup=True,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["cloud4wi", "example"],
    doc_md=__doc__,
):
    wait_for_events = Cloud4WiEventsSensor(
        task_id="wait_for_events",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        # Some events (a visit) are created when they end: give the hour time to fill up.
        settle_delay=dt.timedelta(minutes=15),
        poke_interval=300,
        # A quiet hour may never hold an event: after an hour, stop waiting (skip) and export anyway.
        timeout=3600,
        soft_fail=True,
        deferrable=True,
    )
    export_events = Cloud4WiEventsToS3Operator(
        task_id="export_events",
        trigger_rule="none_failed",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        s3_bucket="{{ var.value.get('cloud4wi_s3_bucket', '" + DEFAULT_S3_BUCKET + "') }}",
        outlets=[EXPORTED_EVENTS],
    )
    wait_for_events >> export_events
