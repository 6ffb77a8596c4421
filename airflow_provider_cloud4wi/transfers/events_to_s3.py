"""Cloud4WiEventsToS3Operator: export a window of Cloud4Wi events to Amazon S3."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.checksums import Checksum, StoredObject
from airflow_provider_cloud4wi.transfers.streaming import PartUpload

__all__ = ["Cloud4WiEventsToS3Operator"]


class Cloud4WiEventsToS3Operator(Cloud4WiEventsTransferBaseOperator):
    """
    Export the Cloud4Wi events of one window to Amazon S3 as JSON Lines, gzip-compressed by default.

    Uploads go through the client of the Amazon provider's
    :class:`~airflow.providers.amazon.aws.hooks.s3.S3Hook` (multipart for large files, so an object
    appears only once complete), each verified by S3 against the file's SHA-256 (a corrupted body is
    refused and the key keeps its previous version). One JSON Lines object (not split, not
    partitioned) is streamed: a multipart upload fed while the pull runs, each part verified
    against its SHA-256, no local file, aborted on any failure. Uploads replace an object of the
    same key, so retries and re-runs of a window succeed. Every other parameter is described in
    :class:`~airflow_provider_cloud4wi.transfers.base.Cloud4WiEventsTransferBaseOperator`.

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

    #: S3 verifies a SHA-256 of each request's body against the one the request carries.
    checksum_algorithm: ClassVar[str] = "SHA256"
    streams_uploads: ClassVar[bool] = True

    @cached_property
    def s3_hook(self) -> S3Hook:
        """The S3 hook of ``aws_conn_id``."""
        return S3Hook(aws_conn_id=self.aws_conn_id)

    def upload_file(self, path: Path, bucket: str, key: str, checksum: Checksum, media_type: str) -> None:
        """
        Upload a file so that S3 checks every byte against the local SHA-256 and refuses a mismatch.

        Up to the connection's ``multipart_threshold`` (the S3 hook's transfer configuration, 8 MiB by
        default) the file goes in one ``PutObject`` carrying ``checksum`` as ``ChecksumSHA256``: S3
        compares it with the body it received and answers ``BadDigest`` on a mismatch, leaving the
        key as it was. Larger files go in a multipart upload (see :meth:`_upload_in_parts`). The
        requests name the algorithm too (``ChecksumAlgorithm``), which S3 ignores beside a value but
        S3-compatible stores such as moto need to record the checksum.

        The managed transfer of :meth:`S3Hook.load_file` is not used: with a precomputed SHA-256 it
        asks S3 for a ``FULL_OBJECT`` SHA-256 of a multipart upload, which S3 documents for the CRC
        algorithms only, and without one it checks the parts against digests computed while reading,
        never against ``checksum``.

        :param path: the local file.
        :param bucket: the bucket name.
        :param key: the object name.
        :param checksum: the file's SHA-256 (as :func:`~.checksums.file_checksum` returns it).
        :param media_type: the object's Content-Type.
        """
        if checksum.algorithm != self.checksum_algorithm:
            raise ValueError(f"S3 uploads are verified with SHA256, not {checksum.algorithm}.")
        size = path.stat().st_size
        if size <= self.s3_hook.transfer_config.multipart_threshold:
            with path.open("rb") as body:
                _put_verified(self.s3_hook.get_conn(), bucket, key, body, media_type, checksum.value)
        else:
            self._upload_in_parts(path, size, bucket, key, checksum, media_type)

    def _upload_in_parts(
        self, path: Path, size: int, bucket: str, key: str, checksum: Checksum, media_type: str
    ) -> None:
        """
        A multipart upload whose parts S3 verifies, tied to the file's SHA-256.

        Each part carries the SHA-256 of the very bytes sent, which S3 checks; those bytes also feed
        a SHA-256 of the whole file, and the upload is completed only if that equals ``checksum``
        (else aborted, so nothing appears at ``key``). The stored object is thus exactly the bytes
        ``checksum`` describes, though S3 records a checksum of the parts' checksums for it.
        """
        client = self.s3_hook.get_conn()
        part_size = _part_size(size, self.s3_hook.transfer_config.multipart_chunksize)
        upload_id = client.create_multipart_upload(
            Bucket=bucket,
            Key=key,
            ContentType=media_type,
            ChecksumAlgorithm="SHA256",
            ChecksumType="COMPOSITE",
        )["UploadId"]
        try:
            whole = hashlib.sha256()
            parts: list[dict[str, Any]] = []
            with path.open("rb") as file:
                while data := file.read(part_size):
                    whole.update(data)
                    digest = _b64(hashlib.sha256(data).digest())
                    reply = client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=digest,
                    )
                    parts.append(
                        {"PartNumber": len(parts) + 1, "ETag": reply["ETag"], "ChecksumSHA256": digest}
                    )
            if _b64(whole.digest()) != checksum.value:
                raise ValueError(f"{path} changed after its checksum was computed; not uploading it.")
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # The parts of an unfinished upload are billed until aborted; should aborting fail too,
            # the next run's abort_open_uploads finds the upload, and the first error is the one to see.
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def open_part_upload(self, bucket: str, key: str, media_type: str) -> PartUpload:
        """
        An upload of ``key`` in parts S3 verifies, for an object written as it goes.

        Each part carries the SHA-256 of its bytes, which S3 checks; the object appears at ``key``
        only when the upload completes, and aborting it leaves ``key`` as it was. The multipart
        upload starts with the first part: an object smaller than one part goes in one
        ``PutObject`` carrying its SHA-256.

        :param bucket: the bucket name.
        :param key: the object name.
        :param media_type: the object's Content-Type.
        """
        # The smallest parts S3 takes: the stream holds about three of them in memory.
        return _S3PartUpload(self.s3_hook.get_conn(), bucket, key, media_type, _MIN_PART_BYTES)

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """
        List through the S3 hook's client, with each object's ``LastModified``.

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        """
        pages = (
            self.s3_hook.get_conn().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [
            StoredObject(item["Key"], item["LastModified"].astimezone(dt.timezone.utc))
            for page in pages
            for item in page.get("Contents", [])
        ]

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """
        Read through the S3 hook's client; None when there is no such key.

        :param bucket: the bucket name.
        :param key: the object name.
        """
        client = self.s3_hook.get_conn()
        try:
            reply = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None
        return bytes(reply["Body"].read())

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """
        Delete through :meth:`S3Hook.delete_objects` (S3 treats a missing key as deleted).

        :param bucket: the bucket name.
        :param keys: the object names.
        """
        self.s3_hook.delete_objects(bucket=bucket, keys=keys)

    def abort_open_uploads(
        self, bucket: str, prefix: str, should_abort: Callable[[str, dt.datetime], bool]
    ) -> list[str]:
        """
        Abort the multipart uploads under ``prefix`` that ``should_abort`` picks (their parts cost
        storage until aborted, though nobody sees them).

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        :param should_abort: decides for each open upload, from its key and start time.
        """
        client = self.s3_hook.get_conn()
        aborted: list[str] = []
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if should_abort(upload["Key"], upload["Initiated"].astimezone(dt.timezone.utc)):
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(upload["Key"])
        return aborted


#: S3's limits on the parts of a multipart upload.
_MIN_PART_BYTES = 5 * 1024 * 1024
_MAX_PARTS = 10_000


def _part_size(size: int, preferred: int) -> int:
    """The part size nearest ``preferred`` that S3 accepts for a file of ``size`` bytes."""
    return max(preferred, _MIN_PART_BYTES, -(-size // _MAX_PARTS))


def _put_verified(client: Any, bucket: str, key: str, body: Any, media_type: str, sha256: str) -> None:
    """One ``PutObject`` that S3 refuses (BadDigest) unless the body it received has ``sha256``."""
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=media_type,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=sha256,
    )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class _S3PartUpload:
    """
    One object's upload to S3, each part checked by S3 against its SHA-256 (see ``PartUpload``).

    The multipart upload starts with the first part, so an object stored whole costs one request.
    """

    checksum_algorithm = "SHA256"

    def __init__(self, client: Any, bucket: str, key: str, media_type: str, part_bytes: int) -> None:
        self.part_bytes = part_bytes
        self._client = client
        self._target = {"Bucket": bucket, "Key": key}
        self._media_type = media_type
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def send(self, number: int, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                **self._target,
                ContentType=self._media_type,
                ChecksumAlgorithm="SHA256",
                ChecksumType="COMPOSITE",
            )["UploadId"]
        digest = _b64(hashlib.sha256(data).digest())
        reply = self._client.upload_part(
            **self._target,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=digest,
        )
        self._parts.append({"PartNumber": number, "ETag": reply["ETag"], "ChecksumSHA256": digest})

    def complete(self) -> None:
        # S3 checked each part against its SHA-256 as it arrived; the whole object's SHA-256,
        # hashed by the stream, goes to the manifest (S3 records a checksum of the parts').
        self._client.complete_multipart_upload(
            **self._target, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )

    def put_whole(self, data: bytes, checksum: str) -> None:
        _put_verified(
            self._client, self._target["Bucket"], self._target["Key"], data, self._media_type, checksum
        )

    def abort(self) -> None:
        if self._upload_id is None:
            return
        # Should aborting fail, the next run's abort_open_uploads finds the upload.
        with contextlib.suppress(Exception):
            self._client.abort_multipart_upload(**self._target, UploadId=self._upload_id)
