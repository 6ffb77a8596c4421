"""What only the S3 transfer does: its own connection parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage_servers import AWS_REGION, LocalServer, S3BucketView
from transfer_helpers import FAST_RETRIES, decode_lines, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator


def test_aws_conn_id_chooses_the_connection_the_upload_uses(
    s3_bucket: S3BucketView,
    moto_server: LocalServer,
    cloud4wi_simulator: Cloud4WiSimulator,
    cloud4wi_conn_id: str,
    set_connection: Callable[..., str],
) -> None:
    aws_extra: dict[str, Any] = {"region_name": AWS_REGION}
    set_connection(
        "aws_default",
        "aws",
        login="x",
        password="y",
        extra={**aws_extra, "endpoint_url": "http://127.0.0.1:9"},
    )
    lake = set_connection(
        "aws_lake",
        "aws",
        login="testing",
        password="testing",
        extra={**aws_extra, "endpoint_url": moto_server.url},
    )
    operator = Cloud4WiEventsToS3Operator(
        task_id="export",
        s3_bucket=s3_bucket.name,
        s3_key="events.jsonl.gz",
        aws_conn_id=lake,
        window_start=hour(1, 2),
        window_end=hour(1, 3),
        hook_params=FAST_RETRIES,
    )
    operator.execute(context={})  # type: ignore[arg-type]
    expected = list(cloud4wi_simulator.expected_events(hour(1, 2), hour(1, 3)))
    assert decode_lines(s3_bucket.read("events.jsonl.gz")) == expected
