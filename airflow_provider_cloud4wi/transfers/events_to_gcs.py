"""Cloud4WiEventsToGCSOperator: export a window of Cloud4Wi events to Google Cloud Storage."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.google.cloud.hooks.gcs import GCSHook

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.writer import media_type

__all__ = ["Cloud4WiEventsToGCSOperator"]


class Cloud4WiEventsToGCSOperator(Cloud4WiEventsTransferBaseOperator):
    """
    Export the Cloud4Wi events of one window to Google Cloud Storage as JSON Lines, gzip by default.

    Uploads go through the Google provider's :class:`~airflow.providers.google.cloud.hooks.gcs.GCSHook`
    (resumable for large files; an object appears only once its upload completes) and replace an
    object of the same name. Every other parameter is described in
    :class:`~airflow_provider_cloud4wi.transfers.base.Cloud4WiEventsTransferBaseOperator`.

    .. code-block:: python

        Cloud4WiEventsToGCSOperator(task_id="export", bucket="my-lake")

    :param bucket: the bucket to write to. (templated)
    :param object_name: the object name; default: ``cloud4wi/events/organization_id=<cid>/
        date=<YYYY-MM-DD>/events_<start>_<end>.jsonl.gz`` for the window. With
        ``max_events_per_file`` the parts are written beside it as ``<stem>.part-NNNNN<ext>``.
        (templated)
    :param gcp_conn_id: the Google Cloud connection used by the GCS hook.
    :param impersonation_chain: a service account to impersonate, or a chain of them, as in the
        Google provider's operators. (templated)
    """

    template_fields: Sequence[str] = (
        *Cloud4WiEventsTransferBaseOperator.template_fields,
        "bucket",
        "object_name",
        "impersonation_chain",
    )
    bucket_field = "bucket"
    key_field = "object_name"
    uri_scheme = "gs"

    def __init__(
        self,
        *,
        bucket: str,
        object_name: str | None = None,
        gcp_conn_id: str = "google_cloud_default",
        impersonation_chain: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.object_name = object_name
        self.gcp_conn_id = gcp_conn_id
        self.impersonation_chain = impersonation_chain

    @cached_property
    def gcs_hook(self) -> GCSHook:
        """The GCS hook of ``gcp_conn_id``."""
        return GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)

    def upload_file(self, path: Path, bucket: str, key: str) -> None:
        """Upload through :meth:`GCSHook.upload`, replacing the object."""
        self.gcs_hook.upload(
            bucket_name=bucket, object_name=key, filename=str(path), mime_type=media_type(self.compression)
        )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """List through :meth:`GCSHook.list`."""
        return list(self.gcs_hook.list(bucket_name=bucket, prefix=prefix))

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """Delete through :meth:`GCSHook.delete`, one object at a time (GCS has no batch delete call)."""
        for key in keys:
            self.gcs_hook.delete(bucket_name=bucket, object_name=key, ignore_error=True)
