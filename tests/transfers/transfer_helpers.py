"""Helpers shared by the transfer tests: instants of the simulated data, object decoding, storage cases."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage_servers import data_keys, stored_manifest

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.checksums import Checksum
from airflow_provider_cloud4wi.transfers.manifest import Manifest

FAST_RETRIES = {"retry_wait_initial": 0.01, "retry_wait_max": 0.05, "retry_after_cap": 0.05}
UTC = dt.timezone.utc
#: The run token in the names of a multi-object export's objects.
RUN = r"[0-9a-f]{8}-[0-9a-f]{6}"


def hour(day: int, hour: int) -> dt.datetime:
    """An instant of January 2024, inside the simulator's default dataset."""
    return dt.datetime(2024, 1, day, hour, tzinfo=UTC)


def decode_lines(data: bytes, *, compressed: bool = True) -> list[dict[str, Any]]:
    """Parse a stored object as JSON Lines, decompressing it first when it is gzip."""
    text = (gzip.decompress(data) if compressed else data).decode("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def file_checksum_of(data: bytes, algorithm: str) -> Checksum:
    """The checksum of ``data`` as the manifest records it, computed here independently."""
    if algorithm == "SHA256":
        digest = hashlib.sha256(data).digest()
    elif algorithm == "MD5":
        digest = hashlib.md5(data).digest()
    else:
        import google_crc32c

        digest = google_crc32c.value(data).to_bytes(4, "big")
    return Checksum(algorithm, base64.b64encode(digest).decode("ascii"))


@dataclass
class StorageCase:
    """One storage backend: its bucket view and a way to build its operator."""

    bucket: Any
    operator_class: type[Cloud4WiEventsTransferBaseOperator]
    bucket_param: str
    key_param: str
    #: The operator's upload method, for simulating a failing upload.
    upload_method: tuple[type, str]

    def operator(self, *, key: str | None = None, **kwargs: Any) -> Cloud4WiEventsTransferBaseOperator:
        """The operator for this backend's bucket, with quick retries against the simulator."""
        kwargs.setdefault("task_id", "export")
        kwargs.setdefault("hook_params", FAST_RETRIES)
        kwargs.setdefault(self.bucket_param, self.bucket.name)
        kwargs[self.key_param] = key
        return self.operator_class(**kwargs)

    def object_names(self) -> list[str]:
        """Every object name in the bucket, sorted."""
        return list(self.bucket.keys())

    def data_names(self) -> list[str]:
        """Every data object's name (every object but the manifests), sorted."""
        return data_keys(self.bucket)

    def manifest(self, key: str) -> Manifest:
        """The manifest of the export whose key (or manifest key) is ``key``."""
        return stored_manifest(self.bucket, key)

    def data_snapshot(self) -> dict[str, bytes]:
        """Every data object of the bucket with its bytes."""
        return {key: self.bucket.read(key) for key in self.data_names()}

    def snapshot(self) -> dict[str, bytes]:
        """Every object of the bucket with its bytes."""
        return {key: self.bucket.read(key) for key in self.object_names()}

    def run(self, window_start: dt.datetime, window_end: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        """Build an operator for the window and execute it; return its result."""
        operator = self.operator(window_start=window_start, window_end=window_end, **kwargs)
        return operator.execute(context={})  # type: ignore[arg-type]

    def uri(self, key: str) -> str:
        """The URI the operators report for ``key``."""
        return f"{self.bucket.scheme}://{self.bucket.name}/{key}"


def hourly_export_dag(dag_id: str, storage: StorageCase) -> str:
    """
    The source of an hourly DAG with two exports into the bucket of ``storage``.

    ``export`` relies on every default (window, key, connections); ``export_visits`` has a
    templated key and event types.
    """
    operator_class, bucket_param, key_param = storage.operator_class, storage.bucket_param, storage.key_param
    bucket = storage.bucket.name
    return f'''
import datetime as dt

from airflow.providers.common.compat.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from {operator_class.__module__} import {operator_class.__name__}

with DAG(
    dag_id="{dag_id}",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    {operator_class.__name__}(task_id="export", {bucket_param}="{bucket}")
    {operator_class.__name__}(
        task_id="export_visits",
        {bucket_param}="{{{{ params.bucket }}}}",
        {key_param}="visits/{{{{ data_interval_start | ds }}}}/{{{{ data_interval_start.hour }}}}.jsonl",
        event_types="{{{{ params.types }}}}",
        compression=None,
        params={{"bucket": "{bucket}", "types": "visit,geo_visit"}},
    )
'''


@dataclass
class OpenLineageLog:
    """OpenLineage's file transport, one JSON event per line, and the environment that selects it."""

    path: Path

    @property
    def env(self) -> dict[str, str]:
        """The settings that make the OpenLineage provider write its events to ``path``."""
        transport = {"type": "file", "log_file_path": str(self.path), "append": True}
        return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}

    def events(self) -> list[dict[str, Any]]:
        """Every event written so far, in order."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


@dataclass
class PartitionRun:
    """What the scheduler would give a partitioned DAG run: its key, date and consumed asset events."""

    key: str
    date: dt.datetime | None
    #: The partition keys of the asset events the run consumed (a PartitionedAssetTimetable run's).
    consumed_partitions: list[str] = field(default_factory=list)
