"""
Runs after each hourly export of ``cloud4wi_events_to_s3``, scheduled on the asset it updates.

The export puts what it landed in the asset event's extra, so a consumer needs no listing and no
naming convention: ``summarize_export`` reads the window, the organization, the number of events,
the bytes and the object URIs from its inlet events, and returns them (XCom) for the tasks that
load them elsewhere. On Airflow 2.11 the asset is a ``Dataset``, with the same extra.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import DAG, task

# Declared with the same name as in cloud4wi_events_to_s3, which updates it.
EXPORTED_EVENTS = Asset("cloud4wi_events")
log = logging.getLogger(__name__)

with DAG(
    dag_id="cloud4wi_events_consumer",
    description="Read what each hourly Cloud4Wi export landed, from the asset event's extra.",
    schedule=[EXPORTED_EVENTS],
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["cloud4wi", "example"],
    doc_md=__doc__,
):

    @task(inlets=[EXPORTED_EVENTS])
    def summarize_export(inlet_events: Any = None) -> dict[str, Any]:
        """The latest export's window, organization, events, bytes and objects."""
        if inlet_events is None:
            raise ValueError("This task reads its inlet events: run it from a DAG run.")
        latest = inlet_events[EXPORTED_EVENTS][-1]
        extra = dict(latest.extra or {})
        summary = {
            name: extra[name]
            for name in ("organization_id", "window_start", "window_end", "event_count", "bytes", "objects")
        }
        log.info("Cloud4Wi export of %s to %s: %s", summary["window_start"], summary["window_end"], summary)
        return summary

    summarize_export()
