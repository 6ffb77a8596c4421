"""
Daily roll-up of the hourly partitions that ``cloud4wi_partitioned_export`` landed (Airflow 3.2+).

``PartitionedAssetTimetable`` with a ``RollupMapper`` (``StartOfDayMapper`` + ``DayWindow``) starts
one run per day, partition key ``2024-01-02``, once all 24 hourly partitions of
``cloud4wi_hourly_events`` have an event. ``summarize_day`` reads their extras from the run's
triggering asset events and returns the day's objects, events and bytes, hour by hour.

On Airflow 2.11 and 3.0/3.1, which have no partitioned timetables, this file defines no DAG.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import DAG, task

try:
    from airflow.sdk import DayWindow, PartitionedAssetTimetable, RollupMapper, StartOfDayMapper
except ImportError:  # before Airflow 3.2
    PartitionedAssetTimetable = None

# Declared with the same name as in cloud4wi_partitioned_export, which updates it.
HOURLY_EVENTS = Asset("cloud4wi_hourly_events")
log = logging.getLogger(__name__)

if PartitionedAssetTimetable is not None:
    with DAG(
        dag_id="cloud4wi_partitioned_daily",
        description="Roll the hourly Cloud4Wi partitions up into days.",
        schedule=PartitionedAssetTimetable(
            assets=HOURLY_EVENTS,
            default_partition_mapper=RollupMapper(upstream_mapper=StartOfDayMapper(), window=DayWindow()),
        ),
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        tags=["cloud4wi", "example"],
        doc_md=__doc__,
    ):

        @task
        def summarize_day(partition_key: Any = None, triggering_asset_events: Any = None) -> dict[str, Any]:
            """The day's hourly exports, in partition order, with the day's totals."""
            hours = sorted(
                (dict(event.extra or {}) for event in triggering_asset_events[HOURLY_EVENTS]),
                key=lambda extra: str(extra["partition_key"]),
            )
            summary = {
                "day": partition_key,
                "hours": [extra["partition_key"] for extra in hours],
                "objects": [uri for extra in hours for uri in extra["objects"]],
                "event_count": sum(int(extra["event_count"]) for extra in hours),
                "bytes": sum(int(extra["bytes"]) for extra in hours),
            }
            log.info("Cloud4Wi day %s: %d hour(s) exported.", summary["day"], len(hours))
            return summary

        summarize_day()
