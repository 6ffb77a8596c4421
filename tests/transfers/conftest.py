"""Fixtures for the transfer tests: one storage case per backend, operators wired to it."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from transfer_helpers import StorageCase

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator


def _s3_case(request: pytest.FixtureRequest) -> StorageCase:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

    return StorageCase(
        bucket=request.getfixturevalue("s3_bucket"),
        operator_class=Cloud4WiEventsToS3Operator,
        bucket_param="s3_bucket",
        key_param="s3_key",
        upload_method=(S3Hook, "load_file"),
    )


def _gcs_case(request: pytest.FixtureRequest) -> StorageCase:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator

    return StorageCase(
        bucket=request.getfixturevalue("gcs_bucket"),
        operator_class=Cloud4WiEventsToGCSOperator,
        bucket_param="bucket",
        key_param="object_name",
        upload_method=(GCSHook, "upload"),
    )


_CASES: dict[str, Callable[[pytest.FixtureRequest], StorageCase]] = {"s3": _s3_case, "gcs": _gcs_case}


@pytest.fixture(params=sorted(_CASES))
def storage(request: pytest.FixtureRequest, cloud4wi_conn_id: str) -> StorageCase:
    """Each storage backend in turn, with a fresh bucket and the simulator's connection defined."""
    return _CASES[request.param](request)


@pytest.fixture
def sim(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator, with connection ``cloud4wi_default`` pointing at it."""
    return cloud4wi_simulator


@pytest.fixture
def default_key_of(sim: Cloud4WiSimulator) -> Callable[..., str]:
    """The Hive-style key the operators use by default for a window (spelled out, not computed)."""

    def key(start: dt.datetime, end: dt.datetime, extension: str = ".jsonl.gz") -> str:
        stamp = "%Y%m%dT%H%M%SZ"
        return (
            f"cloud4wi/events/organization_id={sim.organization_id}/date={start:%Y-%m-%d}/"
            f"events_{start.strftime(stamp)}_{end.strftime(stamp)}{extension}"
        )

    return key


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the operators' local temporary files appear under a directory the test can inspect."""
    root = tmp_path / "operator-temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root
