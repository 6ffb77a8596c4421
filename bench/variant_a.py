"""A, the provider: ``Cloud4WiEventsToS3Operator(...).execute(context)`` with gzip JSON Lines (the default).

The operator is built as a DAG file would build it (explicit window, bucket and key) and its
``execute`` is called directly with a minimal context: ``execute`` reads nothing from the context
(the window comes from the already-rendered ``window_start``/``window_end``), so this runs every
line a worker runs for the task minus Airflow's task runner around it (the same for every variant
that runs inside Airflow). Connections come from ``AIRFLOW_CONN_*`` variables set by the
orchestrator, as a worker would read them from a secrets backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def run(
    bucket: str,
    key: str,
    start: dt.datetime,
    end: dt.datetime,
    max_concurrency: int | None = None,
    *,
    store: str = "s3",
    options: dict[str, Any] | None = None,
) -> tuple[int, int, list[str]]:
    """Export the window; return (events, bytes of the data objects, their URIs).

    ``max_concurrency`` None leaves the operator's default; the manifest beside the data object
    is not counted in the bytes. ``store`` is ``"s3"`` or ``"gcs"`` (the GCS operator, its
    connection ``google_cloud_default``); ``options`` are more of the operator's arguments.
    """
    arguments: dict[str, Any] = dict(options or {})
    if max_concurrency is not None:
        arguments["max_concurrency"] = max_concurrency
    common = {
        "task_id": f"cloud4wi_events_to_{store}",
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        **arguments,
    }
    operator: Any
    if store == "gcs":
        from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator

        operator = Cloud4WiEventsToGCSOperator(bucket=bucket, object_name=key, **common)
    else:
        from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

        operator = Cloud4WiEventsToS3Operator(s3_bucket=bucket, s3_key=key, **common)
    context: dict[str, Any] = {}
    result = operator.execute(context)  # type: ignore[arg-type]
    objects = [str(uri) for uri in result.get("objects") or []] or [f"{store}://{bucket}/{key}"]
    return int(result["event_count"]), int(result["bytes"]), objects
