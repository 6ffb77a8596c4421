"""Cloud4WiEventsToGCSOperator: export a window of Cloud4Wi events to Google Cloud Storage."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from airflow.providers.google.cloud.hooks.gcs import GCSHook
from google.api_core.exceptions import NotFound
from google.cloud.storage.fileio import BlobWriter

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.checksums import Checksum, StoredObject
from airflow_provider_cloud4wi.transfers.streaming import PartUpload

__all__ = ["Cloud4WiEventsToGCSOperator"]


class Cloud4WiEventsToGCSOperator(Cloud4WiEventsTransferBaseOperator):
    """
    Export the Cloud4Wi events of one window to Google Cloud Storage as JSON Lines, gzip by default.

    Uploads go through the Google provider's :class:`~airflow.providers.google.cloud.hooks.gcs.GCSHook`
    (resumable for large files; an object appears only once its upload completes), each verified
    by GCS against the file's CRC32C (a corrupted body is refused and an older object of the name
    stays), and replace an object of the same name. One JSON Lines object (not split, not
    partitioned) is streamed: a resumable upload fed while the pull runs, no local file, finalized
    with the CRC32C of the whole object, which GCS checks before the object appears, and cancelled
    on any failure. Every other parameter is described in
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

    #: GCS verifies an upload against the CRC32C its metadata states, whatever the upload's size.
    checksum_algorithm: ClassVar[str] = "CRC32C"
    streams_uploads: ClassVar[bool] = True

    @cached_property
    def gcs_hook(self) -> GCSHook:
        """The GCS hook of ``gcp_conn_id``."""
        return GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)

    def upload_file(self, path: Path, bucket: str, key: str, checksum: Checksum, media_type: str) -> None:
        """
        Upload a file so that GCS checks it against the local CRC32C and refuses a mismatch.

        ``checksum`` goes into the object's metadata as ``crc32c``: in the single request of a small
        (multipart) upload, and in the request that starts a resumable upload of a large one
        (``crc32c_checksum_value``), so GCS compares the whole object with it before creating it, and
        an object of the same name stays as it was when they differ. The client also sends an MD5
        of the bytes it read (``checksum="md5"``, which leaves our CRC32C in place where ``"auto"``
        would replace it with one of its own), checked by GCS too.

        :meth:`GCSHook.upload` is not used: it cannot state the object's checksum.

        :param path: the local file.
        :param bucket: the bucket name.
        :param key: the object name.
        :param checksum: the file's CRC32C (as :func:`~.checksums.file_checksum` returns it).
        :param media_type: the object's Content-Type.
        """
        if checksum.algorithm != self.checksum_algorithm:
            raise ValueError(f"GCS uploads are verified with CRC32C, not {checksum.algorithm}.")
        _upload_verified(self.gcs_hook.get_conn().bucket(bucket).blob(key), path, media_type, checksum.value)

    def open_part_upload(self, bucket: str, key: str, media_type: str) -> PartUpload:
        """
        A resumable upload of ``key`` through the GCS hook's client, for an object written as it goes.

        Chunks go up as the parts arrive; the last one is held back until the upload completes
        and is sent with the CRC32C of the whole object (``x-goog-hash``), which GCS compares with
        what it received before the object appears. Until then nothing is visible at ``key``. An
        object smaller than one part goes in one request carrying its CRC32C, as a file does.

        :param bucket: the bucket name.
        :param key: the object name.
        :param media_type: the object's Content-Type.
        """
        blob = self.gcs_hook.get_conn().bucket(bucket).blob(key)
        return _GCSPartUpload(blob, media_type, _PART_BYTES)

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """
        List through the GCS hook's client, with each object's update time.

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        """
        blobs = self.gcs_hook.get_conn().list_blobs(bucket, prefix=prefix)
        return [StoredObject(blob.name, blob.updated.astimezone(dt.timezone.utc)) for blob in blobs]

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """
        Read through the GCS hook's client; None when there is no such object.

        :param bucket: the bucket name.
        :param key: the object name.
        """
        try:
            return bytes(
                self.gcs_hook.get_conn().bucket(bucket).blob(key).download_as_bytes(raw_download=True)
            )
        except NotFound:
            return None

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """
        Delete through :meth:`GCSHook.delete`, one object at a time (GCS has no batch delete call).

        :param bucket: the bucket name.
        :param keys: the object names.
        """
        for key in keys:
            self.gcs_hook.delete(bucket_name=bucket, object_name=key, ignore_error=True)

    def abort_open_uploads(
        self, bucket: str, prefix: str, should_abort: Callable[[str, dt.datetime], bool]
    ) -> list[str]:
        """
        Return ``[]``: an unfinished resumable upload is invisible in GCS (no listing shows it, it
        costs nothing and expires after a week), so a killed run leaves nothing to abort.

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        :param should_abort: unused.
        """
        return []


def _upload_verified(blob: Any, source: Path | bytes, media_type: str, crc32c: str) -> None:
    """
    Upload a file or bytes to ``blob`` with ``crc32c`` stated in its metadata, which GCS compares
    with the whole object before creating it (see :meth:`Cloud4WiEventsToGCSOperator.upload_file`).
    """
    blob.crc32c = crc32c
    options = {"content_type": media_type, "checksum": "md5", "crc32c_checksum_value": crc32c}
    if isinstance(source, Path):
        blob.upload_from_filename(str(source), **options)
    else:
        blob.upload_from_string(source, **options)


#: GCS takes resumable chunks in multiples of 256 KiB and advises at least 8 MiB per chunk.
_PART_BYTES = 8 * 1024 * 1024


class _GCSPartUpload:
    """
    One object's resumable upload to GCS, through google-cloud-storage's own ``BlobWriter``
    (see ``PartUpload``).

    The writer sends whole chunks as parts arrive and keeps the rest; only closing it sends the
    final chunk, which carries the CRC32C of every byte (the writer computes it,
    ``checksum="crc32c"``), so GCS refuses a corrupted object before it appears. The session
    starts with the first part, so an object stored whole costs one request.
    """

    checksum_algorithm = "CRC32C"

    def __init__(self, blob: Any, media_type: str, part_bytes: int) -> None:
        self.part_bytes = part_bytes
        self._blob = blob
        self._media_type = media_type
        self._writer: BlobWriter | None = None

    def send(self, number: int, data: bytes) -> None:
        if self._writer is None:
            self._writer = BlobWriter(
                self._blob, chunk_size=self.part_bytes, content_type=self._media_type, checksum="crc32c"
            )
        self._writer.write(data)

    def complete(self) -> None:
        if self._writer is None:
            raise RuntimeError("complete() of an upload no part was sent for; use put_whole()")
        self._writer.close()

    def put_whole(self, data: bytes, checksum: str) -> None:
        _upload_verified(self._blob, data, self._media_type, checksum)

    def abort(self) -> None:
        if self._writer is None:
            return
        try:
            if self._writer._upload_and_transport is not None:
                # BlobWriter.terminate() sends its DELETE to the URL that starts uploads, not to
                # the session, which then stays open (invisible) for a week; cancel the session.
                upload, transport = self._writer._upload_and_transport
                with contextlib.suppress(Exception):
                    transport.delete(upload.resumable_url)
        finally:
            # A BlobWriter is a file object: when it is collected, io's finalizer calls close(),
            # which would send what it still holds as the final chunk and publish a truncated
            # object (should the DELETE have failed). Closing its buffer makes close() send nothing.
            self._writer._buffer.close()
