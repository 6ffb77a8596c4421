"""What only the GCS transfer does: its own connection parameter."""

from __future__ import annotations

from collections.abc import Callable

from storage_servers import GCP_PROJECT, GCSBucketView
from transfer_helpers import FAST_RETRIES, decode_lines, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator


def test_gcp_conn_id_chooses_the_connection_the_upload_uses(
    gcs_bucket: GCSBucketView,
    cloud4wi_simulator: Cloud4WiSimulator,
    cloud4wi_conn_id: str,
    set_connection: Callable[..., str],
) -> None:
    set_connection(
        "google_cloud_default", "google_cloud_platform", extra={"key_path": "/nonexistent/key.json"}
    )
    lake = set_connection(
        "gcp_lake", "google_cloud_platform", extra={"is_anonymous": True, "project": GCP_PROJECT}
    )
    operator = Cloud4WiEventsToGCSOperator(
        task_id="export",
        bucket=gcs_bucket.name,
        object_name="events.jsonl.gz",
        gcp_conn_id=lake,
        window_start=hour(1, 2),
        window_end=hour(1, 3),
        hook_params=FAST_RETRIES,
    )
    operator.execute(context={})  # type: ignore[arg-type]
    expected = list(cloud4wi_simulator.expected_events(hour(1, 2), hour(1, 3)))
    assert decode_lines(gcs_bucket.read("events.jsonl.gz")) == expected
