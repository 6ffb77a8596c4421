"""
Hourly export of Cloud4Wi events to Google Cloud Storage.

Each run waits, in the triggerer, until the hour that just ended has settled and holds events (an
hour at most: a quiet hour is exported anyway), then writes that hour's events as one gzip JSON
Lines object under a Hive-style key that depends only on the hour::

    gs://<bucket>/cloud4wi/events/organization_id=<cid>/date=2024-01-02/
        events_20240102T000000Z_20240102T010000Z.jsonl.gz

Because the key is a function of the window, a retried, cleared or backfilled hour replaces its
own object: every event lands exactly once, however often an hour runs.

Settings, all optional:

* Airflow Variable ``cloud4wi_gcs_bucket`` (UI, ``airflow variables set`` or the environment variable
  ``AIRFLOW_VAR_CLOUD4WI_GCS_BUCKET``), read at run time; default ``cloud4wi-events``.
* Environment, read when the file is parsed: ``CLOUD4WI_CONN_ID`` (default ``cloud4wi_default``),
  ``CLOUD4WI_GCP_CONN_ID`` (default ``google_cloud_default``), ``CLOUD4WI_EXAMPLE_START_DATE`` (ISO 8601,
  default ``2024-01-01T00:00:00+00:00``, the start of the simulator's data) and
  ``CLOUD4WI_EXAMPLE_END_DATE`` (ISO 8601, default: none).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator

DEFAULT_GCS_BUCKET = "cloud4wi-events"
CLOUD4WI_CONN_ID = os.environ.get("CLOUD4WI_CONN_ID", "cloud4wi_default")
GCP_CONN_ID = os.environ.get("CLOUD4WI_GCP_CONN_ID", "google_cloud_default")


def _env_datetime(name: str, default: str | None) -> dt.datetime | None:
    """Read an aware ISO 8601 date-time from the environment (UTC when no offset is given)."""
    text = os.environ.get(name) or default
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


with DAG(
    dag_id="cloud4wi_events_to_gcs",
    description="Export each hour of Cloud4Wi events to GCS as gzip JSON Lines.",
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
    export_events = Cloud4WiEventsToGCSOperator(
        task_id="export_events",
        trigger_rule="none_failed",
        cloud4wi_conn_id=CLOUD4WI_CONN_ID,
        gcp_conn_id=GCP_CONN_ID,
        bucket="{{ var.value.get('cloud4wi_gcs_bucket', '" + DEFAULT_GCS_BUCKET + "') }}",
    )
    wait_for_events >> export_events
