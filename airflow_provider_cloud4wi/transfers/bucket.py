"""The storage side of one export run: list, upload with checksums, commit the manifest, roll back, sweep.

:class:`ExportBucket` sequences these steps over any store that implements :class:`ObjectStore`
(the transfer operators do, each with its storage's official hook), in the order that keeps the
promises of :mod:`airflow_provider_cloud4wi.transfers.manifest` and
:mod:`airflow_provider_cloud4wi.transfers.sweep`: data objects first, the manifest last, deletions
only after it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from airflow_provider_cloud4wi._compat import AirflowException
from airflow_provider_cloud4wi.api.logs import Log
from airflow_provider_cloud4wi.transfers.checksums import Checksum, StoredObject, file_checksum
from airflow_provider_cloud4wi.transfers.keys import ExportLayout
from airflow_provider_cloud4wi.transfers.manifest import (
    MANIFEST_MEDIA_TYPE,
    Manifest,
    ManifestError,
    ManifestObject,
)
from airflow_provider_cloud4wi.transfers.streaming import PartStream, PartUpload, PartUploadError
from airflow_provider_cloud4wi.transfers.sweep import abort_rule
from airflow_provider_cloud4wi.writer import BinarySink, PartFile

__all__ = ["Cloud4WiStorageError", "ExportBucket", "ObjectStore", "PlannedObject"]


class Cloud4WiStorageError(AirflowException):
    """Object storage refused an operation; the message names the operation, the object and why."""


class ObjectStore(Protocol):
    """What a transfer operator provides for its storage (see the operator base class for the contract)."""

    @property
    def checksum_algorithm(self) -> str:
        """The checksum the store verifies on upload."""
        ...

    def upload_file(self, path: Path, bucket: str, key: str, checksum: Checksum, media_type: str) -> None:
        """Upload ``path`` to ``key``, verified by the store against ``checksum``."""
        ...

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """The objects under ``prefix``."""
        ...

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """A small object's bytes, or None."""
        ...

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """Delete these objects."""
        ...

    def abort_open_uploads(
        self, bucket: str, prefix: str, should_abort: Callable[[str, dt.datetime], bool]
    ) -> list[str]:
        """Abort the unfinished uploads ``should_abort`` picks."""
        ...

    def uri(self, bucket: str, key: str) -> str:
        """``<scheme>://<bucket>/<key>``."""
        ...

    def open_part_upload(self, bucket: str, key: str, media_type: str) -> PartUpload | None:
        """An upload of ``key`` in parts as it is written, or None if the store takes files only."""
        ...


@dataclass(frozen=True)
class PlannedObject:
    """
    One local file and the object it becomes.

    :param key: the object name.
    :param event_type: the event type it holds (partitioned exports), else None.
    :param part: the local file.
    :param checksum: the file's checksum, which the store verifies.
    """

    key: str
    event_type: str | None
    part: PartFile
    checksum: Checksum


@contextlib.contextmanager
def storage_errors(action: str, what: str) -> Iterator[None]:
    """Report any failure of the block as a :class:`Cloud4WiStorageError` naming what was attempted."""
    try:
        yield
    except Cloud4WiStorageError:
        raise
    except Exception as err:
        raise Cloud4WiStorageError(f"Could not {action} {what}: {err}") from err


class ExportBucket:
    """
    One bucket as one export run uses it.

    :param store: the operator, which talks to the storage.
    :param bucket: the bucket name.
    :param log: where to say what was done.
    :param temp_dir: where the manifest is written before its upload; None for the system's.
    """

    def __init__(self, store: ObjectStore, bucket: str, log: Log, temp_dir: str | None) -> None:
        self.store = store
        self.bucket = bucket
        self.log = log
        self.temp_dir = temp_dir

    def uri(self, key: str) -> str:
        """The URI of an object of this bucket."""
        return self.store.uri(self.bucket, key)

    def list_owned(self, layout: ExportLayout) -> list[StoredObject]:
        """The objects the export may own, any run's; fails with what to check when listing is refused."""
        found: list[StoredObject] = []
        for prefix in layout.listing_prefixes():
            try:
                found += self.store.list_objects(self.bucket, prefix)
            except Exception as err:
                raise Cloud4WiStorageError(
                    f"Could not list {self.uri(prefix + '*')}: {err}. Check that bucket '{self.bucket}' "
                    "exists and that the storage connection may list, write and delete objects in it."
                ) from err
        return sorted(
            (item for item in found if layout.parse(item.key) is not None), key=lambda item: item.key
        )

    def abort_leftover_uploads(
        self, layout: ExportLayout, identity: str | None, run_started: dt.datetime
    ) -> None:
        """Abort the unfinished uploads a killed run left under the export's names."""
        should_abort = abort_rule(layout, identity, run_started)
        for prefix in layout.listing_prefixes():
            with storage_errors("abort the unfinished uploads under", self.uri(prefix + "*")):
                aborted = self.store.abort_open_uploads(self.bucket, prefix, should_abort)
            for key in aborted:
                self.log.warning("Aborted the unfinished upload to %s an earlier run left.", self.uri(key))

    def upload_all(
        self, planned: list[PlannedObject], existing: set[str], media_type: str
    ) -> list[ManifestObject]:
        """Upload every planned object; on failure remove those this run created, then re-raise."""
        written: list[ManifestObject] = []
        try:
            for item in planned:
                written.append(self.upload_one(item, media_type))
        except BaseException:
            self.roll_back([item.key for item in written if item.key not in existing])
            raise
        return written

    def upload_one(self, item: PlannedObject, media_type: str) -> ManifestObject:
        """
        Upload one object, checked by the store against its checksum; return its manifest entry.

        :param item: the local file and its object.
        :param media_type: the object's Content-Type.
        """
        uri, part = self.uri(item.key), item.part
        with storage_errors("upload", f"{part.path.name} ({part.events} events) to {uri}"):
            self.store.upload_file(part.path, self.bucket, item.key, item.checksum, media_type)
        self.log.info(
            "Uploaded %s: %d events, %d bytes, %s %s.",
            uri,
            part.events,
            part.size_bytes,
            item.checksum.algorithm,
            item.checksum.value,
        )
        return ManifestObject(uri, item.key, item.event_type, part.events, part.size_bytes, item.checksum)

    def stream_one(
        self, key: str, media_type: str, write: Callable[[BinarySink], int], write_empty: bool
    ) -> ManifestObject | None:
        """
        Upload one object while ``write`` produces it; return its manifest entry.

        ``write`` writes the object into the sink it is given and returns how many events it
        wrote. The object appears at ``key`` only once every part is in; on any failure the upload
        is aborted and ``key`` keeps what it held. With no event and ``write_empty`` False, the
        upload is aborted and None returned.

        :param key: the object name.
        :param media_type: the object's Content-Type.
        :param write: writes the object; an error it raises is raised as it is.
        :param write_empty: keep an object of no event.
        """
        uri = self.uri(key)
        with storage_errors("start the upload of", uri):
            upload = self.store.open_part_upload(self.bucket, key, media_type)
        if upload is None:
            raise ValueError(f"the store of {uri} takes whole files only")
        sink = PartStream(upload)
        try:
            try:
                events = write(sink)
                streamed = sink.finish()
            except PartUploadError as err:
                raise Cloud4WiStorageError(f"Could not upload {uri}: {err}") from err
            if events == 0 and not write_empty:
                upload.abort()
                return None
            with storage_errors("complete the upload of", f"{uri} ({events} events)"):
                sink.complete()
        except BaseException:
            sink.discard()
            upload.abort()
            raise
        checksum = streamed.checksum
        self.log.info(
            "Uploaded %s while pulling: %d events, %d bytes in %d part(s), %s %s.",
            uri,
            events,
            streamed.size_bytes,
            streamed.parts,
            checksum.algorithm,
            checksum.value,
        )
        return ManifestObject(uri, key, None, events, streamed.size_bytes, checksum)

    def commit(self, key: str, manifest: Manifest, created: list[str]) -> Manifest | None:
        """
        Write the manifest, the export's commit point; return the manifest it replaced.

        :param key: the manifest's name.
        :param manifest: this run's manifest.
        :param created: the objects this run created, removed if the manifest cannot be written.
        """
        replaced = self.read_manifest(key)
        try:
            self._upload_bytes(key, manifest.to_bytes(), MANIFEST_MEDIA_TYPE)
        except BaseException:
            self.roll_back(created)
            raise
        self.log.info(
            "Committed the export: %s lists %d object(s), %d events.",
            self.uri(key),
            len(manifest.objects),
            manifest.event_count,
        )
        return replaced

    def _upload_bytes(self, key: str, data: bytes, media_type: str) -> None:
        with tempfile.TemporaryDirectory(prefix="cloud4wi-events-", dir=self.temp_dir) as directory:
            path = Path(directory) / "manifest.json"
            path.write_bytes(data)
            checksum = file_checksum(path, self.store.checksum_algorithm)
            with storage_errors("upload the manifest", self.uri(key)):
                self.store.upload_file(path, self.bucket, key, checksum, media_type)

    def read_manifest(self, key: str) -> Manifest | None:
        """The manifest at ``key``; None when there is none or it is not one of ours (said in the log)."""
        with storage_errors("read the manifest", self.uri(key)):
            data = self.store.read_object(self.bucket, key)
        if data is None:
            return None
        try:
            return Manifest.from_bytes(data)
        except ManifestError as err:
            self.log.warning(
                "Ignoring %s, which is not a manifest this provider wrote: %s", self.uri(key), err
            )
            return None

    def roll_back(self, created: list[str]) -> None:
        """Remove the objects a failed run created, so no half-written export sits beside an old one."""
        if not created:
            return
        self.log.warning("The export failed; removing the %d object(s) this run created.", len(created))
        try:
            self.store.delete_keys(self.bucket, created)
        except Exception as err:
            self.log.error(
                "Could not remove %s after the failed export (%s); the next successful run replaces or "
                "removes them.",
                ", ".join(self.uri(key) for key in created),
                err,
            )

    def delete(self, keys: list[str], why: str) -> None:
        """
        Delete objects, saying which and why.

        :param keys: the object names.
        :param why: the reason, as the log line ends.
        """
        if not keys:
            return
        uris = ", ".join(self.uri(key) for key in keys)
        self.log.info("Deleting %d object(s) %s: %s", len(keys), why, uris)
        with storage_errors("delete", uris):
            self.store.delete_keys(self.bucket, keys)
