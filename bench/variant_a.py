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
    bucket: str, key: str, start: dt.datetime, end: dt.datetime, max_concurrency: int | None = None
) -> tuple[int, int, list[str]]:
    """Export the window; return (events, bytes of the data objects, their URIs).

    ``max_concurrency`` None leaves the operator's default; the manifest beside the data object
    is not counted in the bytes.
    """
    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

    options: dict[str, Any] = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
    operator = Cloud4WiEventsToS3Operator(
        task_id="cloud4wi_events_to_s3",
        s3_bucket=bucket,
        s3_key=key,
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        **options,
    )
    context: dict[str, Any] = {}
    result = operator.execute(context)  # type: ignore[arg-type]
    objects = [str(uri) for uri in result.get("objects") or []] or [f"s3://{bucket}/{key}"]
    return int(result["event_count"]), int(result["bytes"]), objects
