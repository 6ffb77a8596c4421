"""The manifest of an export: the object written last, naming every object of the run that wrote it.

A reader that starts from ``<stem>.manifest.json`` sees one run's complete export: the objects it
lists were all uploaded (and checked by the store) before it was written, and a later run deletes
them only after its own manifest has replaced this one.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_cloud4wi.transfers.checksums import Checksum

__all__ = ["MANIFEST_FORMAT", "Manifest", "ManifestError", "ManifestObject", "read_manifest"]

#: The ``format`` member of every manifest, so a reader can tell one from any other JSON object.
MANIFEST_FORMAT = "cloud4wi-export-manifest"
MANIFEST_VERSION = 1
#: The media type the manifest is uploaded with.
MANIFEST_MEDIA_TYPE = "application/json"


class ManifestError(ValueError):
    """A manifest could not be read: not JSON, not a manifest, or of an unknown version."""


@dataclass(frozen=True)
class ManifestObject:
    """
    One object of an export, as its manifest lists it.

    :param uri: ``<scheme>://<bucket>/<key>``.
    :param key: the object name.
    :param event_type: the event type the object holds (``partition_by="event_type"``), else None.
    :param events: how many events (lines or rows) it holds.
    :param bytes: its size.
    :param checksum: its checksum, as the store verified it on upload.
    """

    uri: str
    key: str
    event_type: str | None
    events: int
    bytes: int
    checksum: Checksum

    def to_json(self) -> dict[str, Any]:
        """The object as the manifest's JSON holds it."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ManifestObject:
        """Read one member of a manifest's ``objects``."""
        checksum = value["checksum"]
        return cls(
            uri=str(value["uri"]),
            key=str(value["key"]),
            event_type=value.get("event_type"),
            events=int(value["events"]),
            bytes=int(value["bytes"]),
            checksum=Checksum(algorithm=str(checksum["algorithm"]), value=str(checksum["value"])),
        )


@dataclass(frozen=True)
class Manifest:
    """
    What one run of an export wrote.

    :param run: the run's token, also part of the names of its objects when there are several.
    :param provider_version: the version of this provider that wrote it.
    :param organization_id: the organization exported.
    :param window_start: the window's first instant, ISO 8601.
    :param window_end: the window's end (excluded), ISO 8601.
    :param event_types: the event-type filter, or None for every type.
    :param customer_id: the contact filter, or None.
    :param file_format: ``jsonl`` or ``parquet``.
    :param compression: the compression of the objects (``gzip``, ``zstd``...) or None.
    :param partition_by: ``event_type`` or None.
    :param event_count: the events in all objects.
    :param bytes: the bytes of all objects.
    :param objects: every object of the export.
    """

    run: str
    provider_version: str
    organization_id: str
    window_start: str
    window_end: str
    event_types: list[str] | None
    customer_id: str | None
    file_format: str
    compression: str | None
    partition_by: str | None
    event_count: int
    bytes: int
    objects: Sequence[ManifestObject]

    @property
    def keys(self) -> list[str]:
        """The names of the objects it lists."""
        return [item.key for item in self.objects]

    def to_bytes(self) -> builtins.bytes:
        """The manifest as stored: indented JSON, members in a fixed order."""
        document: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION}
        document.update(asdict(self))
        document["objects"] = [item.to_json() for item in self.objects]
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: builtins.bytes) -> Manifest:
        """
        Read a manifest as :meth:`to_bytes` stores it.

        :param data: the manifest object's bytes.
        """
        try:
            document = json.loads(data)
        except ValueError as err:
            raise ManifestError(f"The manifest is not JSON: {err}.") from err
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"This is not a Cloud4Wi export manifest (no format {MANIFEST_FORMAT!r}).")
        if document.get("version") != MANIFEST_VERSION:
            raise ManifestError(
                f"Manifest version {document.get('version')!r} is not one this provider reads "
                f"({MANIFEST_VERSION}); upgrade airflow-provider-cloud4wi."
            )
        try:
            return cls(
                run=str(document["run"]),
                provider_version=str(document["provider_version"]),
                organization_id=str(document["organization_id"]),
                window_start=str(document["window_start"]),
                window_end=str(document["window_end"]),
                event_types=document.get("event_types"),
                customer_id=document.get("customer_id"),
                file_format=str(document["file_format"]),
                compression=document.get("compression"),
                partition_by=document.get("partition_by"),
                event_count=int(document["event_count"]),
                bytes=int(document["bytes"]),
                objects=[ManifestObject.from_json(item) for item in document["objects"]],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"The manifest misses or mistypes a member: {err!r}.") from err


def read_manifest(uri: str, *, conn_id: str | None = None) -> Manifest:
    """
    Read the manifest at ``uri`` (``s3://...`` or ``gs://...``) through the official storage hook.

    .. code-block:: python

        manifest = read_manifest(ti.xcom_pull(task_ids="export")["manifest"])
        for item in manifest.objects:
            print(item.uri, item.events)

    :param uri: the manifest's URI, as the export's result names it.
    :param conn_id: the storage connection; default: ``aws_default`` for S3,
        ``google_cloud_default`` for GCS.
    """
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ValueError(f"read_manifest needs an s3:// or gs:// URI of an object, not {uri!r}.")
    if scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3_object = S3Hook(aws_conn_id=conn_id or "aws_default").get_key(key, bucket_name=bucket)
        data = s3_object.get()["Body"].read()
    elif scheme == "gs":
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        data = GCSHook(gcp_conn_id=conn_id or "google_cloud_default").download(bucket, key)
    else:
        raise ValueError(f"read_manifest reads s3:// and gs:// URIs, not {uri!r}.")
    return Manifest.from_bytes(data)
