"""
Hourly partitioned export of Cloud4Wi events to S3 (Airflow 3.2+).

``CronPartitionTimetable`` gives each run a partition key (``2024-01-02T03:00:00``) and a
zero-width data interval. The sensor and the export then derive their window from the partition:
from the partition date to the timetable's next tick, here one hour. ``run_offset=-1`` makes the run at
04:00 export the partition of 03:00, the hour that just ended (with 0 it would export the hour that
is only starting). Each export updates the asset ``cloud4wi_hourly_events`` with its partition key,
which ``cloud4wi_partitioned_daily`` rolls up into days.

On Airflow 2.11 and 3.0/3.1, which have no partitioned timetables, this file defines no DAG.
Settings, all optional: the Airflow Variable ``cloud4wi_s3_bucket`` (default ``cloud4wi-events``),
and in the environment ``CLOUD4WI_CONN_ID`` and ``CLOUD4WI_AWS_CONN_ID``.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

try:
    from airflow.sdk import CronPartitionTimetable
except ImportError:  # before Airflow 3.2
    CronPartitionTimetable = None

DEFAULT_S3_BUCKET = "cloud4wi-events"
CLOUD4WI_CONN_ID = os.environ.get("CLOUD4WI_CONN_ID", "cloud4wi_default")
AWS_CONN_ID = os.environ.get("CLOUD4WI_AWS_CONN_ID", "aws_default")
# The daily DAG declares the same asset by the same name.
HOURLY_EVENTS = Asset("cloud4wi_hourly_events")

if CronPartitionTimetable is not None:
    with DAG(
        dag_id="cloud4wi_partitioned_export",
        description="Export each hourly partition of Cloud4Wi events to S3.",
        schedule=CronPartitionTimetable("0 * * * *", timezone="UTC", run_offset=-1),
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=4,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
        tags=["cloud4wi", "example"],
        doc_md=__doc__,
    ):
        wait_for_partition = Cloud4WiEventsSensor(
            task_id="wait_for_partition",
            cloud4wi_conn_id=CLOUD4WI_CONN_ID,
            # Some events (a visit) are created when they end: give the hour time to fill up.
            settle_delay=dt.timedelta(minutes=15),
            poke_interval=300,
            # A quiet hour may never hold an event: after an hour, stop waiting (skip) and export anyway.
            timeout=3600,
            soft_fail=True,
            deferrable=True,
        )
        export_partition = Cloud4WiEventsToS3Operator(
            task_id="export_partition",
            trigger_rule="none_failed",
            cloud4wi_conn_id=CLOUD4WI_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            s3_bucket="{{ var.value.get('cloud4wi_s3_bucket', '" + DEFAULT_S3_BUCKET + "') }}",
            outlets=[HOURLY_EVENTS],
        )
        wait_for_partition >> export_partition
