"""Pytest plugin: real local object storage for the transfer tests.

Session fixtures start moto's standalone S3 server and the gcp-storage-emulator as subprocesses on
free ports and stop them at the end. Function fixtures define the Airflow connections
``aws_default`` and ``google_cloud_default`` pointing at them (through the environment, so a
``dag.test()`` run in this process sees them too) and create a fresh, empty bucket per test,
wrapped in a small view that lists, reads and writes objects without the code under test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from airflow_provider_cloud4wi.transfers.keys import MANIFEST_SUFFIX, ObjectNames
from airflow_provider_cloud4wi.transfers.manifest import Manifest
from devtools import servers
from devtools.servers import LocalServer

AWS_REGION = "us-east-1"
GCP_PROJECT = "cloud4wi-tests"


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """moto's standalone server (S3 and the rest of AWS), for the whole session."""
    with servers.moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The gcp-storage-emulator, in memory, for the whole session."""
    with servers.gcs_emulator(tmp_path_factory.mktemp("gcs")) as server:
        yield server


class BucketView(Protocol):
    """Direct access to a test bucket, independent of the operators under test."""

    name: str
    scheme: str

    def keys(self, prefix: str = "") -> list[str]:
        """The object names under ``prefix``, sorted."""
        ...

    def read(self, key: str) -> bytes:
        """An object's stored bytes."""
        ...

    def content_type(self, key: str) -> str | None:
        """An object's Content-Type."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Write an object."""
        ...


def data_keys(bucket: BucketView, prefix: str = "") -> list[str]:
    """The names of the data objects under ``prefix`` (every object but the exports' manifests), sorted."""
    return [key for key in bucket.keys(prefix) if not key.endswith(MANIFEST_SUFFIX)]


def stored_manifest(bucket: BucketView, key: str) -> Manifest:
    """The manifest of the export whose (unsplit) key or manifest key is ``key``, parsed."""
    if not key.endswith(MANIFEST_SUFFIX):
        key = ObjectNames.from_key(key).manifest_key
    return Manifest.from_bytes(bucket.read(key))


def assert_committed_once(bucket: BucketView, keys: list[str]) -> None:
    """The bucket's data objects are exactly ``keys``, each the one object its manifest lists."""
    assert data_keys(bucket) == sorted(keys)
    for key in keys:
        assert stored_manifest(bucket, key).keys == [key], key


@dataclass
class S3BucketView:
    """A bucket on the moto server, through a plain boto3 client."""

    name: str
    client: Any
    scheme: str = "s3"

    def keys(self, prefix: str = "") -> list[str]:
        """The object names under ``prefix``, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        """An object's stored bytes."""
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def content_type(self, key: str) -> str | None:
        """An object's Content-Type."""
        return self.client.head_object(Bucket=self.name, Key=key).get("ContentType")

    def put(self, key: str, data: bytes) -> None:
        """Write an object."""
        self.client.put_object(Bucket=self.name, Key=key, Body=data)


@dataclass
class GCSBucketView:
    """A bucket on the GCS emulator, through a plain google-cloud-storage client."""

    name: str
    bucket: Any
    scheme: str = "gs"

    def keys(self, prefix: str = "") -> list[str]:
        """The object names under ``prefix``, sorted."""
        return sorted(blob.name for blob in self.bucket.list_blobs(prefix=prefix))

    def read(self, key: str) -> bytes:
        """An object's stored bytes (no transcoding: the tests check what is stored)."""
        return bytes(self.bucket.blob(key).download_as_bytes(raw_download=True))

    def content_type(self, key: str) -> str | None:
        """An object's Content-Type."""
        blob = self.bucket.get_blob(key)
        return None if blob is None else blob.content_type

    def put(self, key: str, data: bytes) -> None:
        """Write an object."""
        self.bucket.blob(key).upload_from_string(data)


def _bucket_name() -> str:
    return f"cloud4wi-test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def aws_conn_id(moto_server: LocalServer, set_connection: Callable[..., str]) -> str:
    """Connection ``aws_default`` pointed at the moto server, with dummy keys."""
    return set_connection(
        "aws_default",
        "aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": moto_server.url, "region_name": AWS_REGION},
    )


@pytest.fixture
def gcp_conn_id(
    gcs_emulator: LocalServer, set_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """Connection ``google_cloud_default``, anonymous, its client sent to the emulator."""
    # google-cloud-storage reads the emulator's address from the environment when a client is made.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    return set_connection(
        "google_cloud_default",
        "google_cloud_platform",
        extra={"is_anonymous": True, "project": GCP_PROJECT},
    )


def moto_client(moto_server: LocalServer) -> Any:
    """A plain boto3 S3 client of the moto server, with its test credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_server.url,
        region_name=AWS_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3_bucket(aws_conn_id: str, moto_server: LocalServer) -> S3BucketView:
    """A new, empty S3 bucket on the moto server."""
    client = moto_client(moto_server)
    name = _bucket_name()
    client.create_bucket(Bucket=name)
    return S3BucketView(name=name, client=client)


@pytest.fixture
def gcs_bucket(gcp_conn_id: str) -> GCSBucketView:
    """A new, empty bucket on the GCS emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    assert os.environ.get("STORAGE_EMULATOR_HOST"), "gcp_conn_id sets the emulator address"
    client = storage.Client(project=GCP_PROJECT, credentials=AnonymousCredentials())
    name = _bucket_name()
    return GCSBucketView(name=name, bucket=client.create_bucket(name))
