"""Cloud4WiEventsToS3Operator: export a window of Cloud4Wi events to Amazon S3."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.writer import media_type

__all__ = ["Cloud4WiEventsToS3Operator"]


class Cloud4WiEventsToS3Operator(Cloud4WiEventsTransferBaseOperator):
    """
    Export the Cloud4Wi events of one window to Amazon S3 as JSON Lines, gzip-compressed by default.

    Uploads go through the Amazon provider's :class:`~airflow.providers.amazon.aws.hooks.s3.S3Hook`
    (multipart for large files, so an object appears only once complete) and always replace an
    object of the same key, so retries and re-runs of a window succeed. Every other parameter is
    described in :class:`~airflow_provider_cloud4wi.transfers.base.Cloud4WiEventsTransferBaseOperator`.

    .. code-block:: python

        Cloud4WiEventsToS3Operator(task_id="export", s3_bucket="my-lake")

    :param s3_bucket: the bucket to write to. (templated)
    :param s3_key: the object key; default: ``cloud4wi/events/organization_id=<cid>/date=<YYYY-MM-DD>/
        events_<start>_<end>.jsonl.gz`` for the window. With ``max_events_per_file`` the parts are
        written beside it as ``<stem>.part-NNNNN<ext>``. (templated)
    :param aws_conn_id: the AWS connection used by the S3 hook.
    """

    template_fields: Sequence[str] = (
        *Cloud4WiEventsTransferBaseOperator.template_fields,
        "s3_bucket",
        "s3_key",
    )
    bucket_field = "s3_bucket"
    key_field = "s3_key"
    uri_scheme = "s3"

    def __init__(
        self,
        *,
        s3_bucket: str,
        s3_key: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.aws_conn_id = aws_conn_id

    @cached_property
    def s3_hook(self) -> S3Hook:
        """The S3 hook of ``aws_conn_id``, labelling uploads with the output's Content-Type."""
        return S3Hook(aws_conn_id=self.aws_conn_id, extra_args={"ContentType": media_type(self.compression)})

    def upload_file(self, path: Path, bucket: str, key: str) -> None:
        """Upload through :meth:`S3Hook.load_file`, replacing the key."""
        self.s3_hook.load_file(filename=path, key=key, bucket_name=bucket, replace=True)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """List through :meth:`S3Hook.list_keys`."""
        return list(self.s3_hook.list_keys(bucket_name=bucket, prefix=prefix))

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """Delete through :meth:`S3Hook.delete_objects` (S3 treats a missing key as deleted)."""
        self.s3_hook.delete_objects(bucket=bucket, keys=keys)
