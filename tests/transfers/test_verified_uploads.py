"""Verified uploads: the store checks each object against the local checksum and refuses a corrupted body.

A corrupting proxy (``corrupting_proxy``) sits between the operator and the storage server and
flips one byte of the uploaded file on the wire. The GCS emulator checks the ``crc32c`` and
``md5Hash`` an upload states, as GCS does. moto does not check S3 checksums (a test below shows it),
so for S3 the proxy also plays S3's documented part: refuse a body that does not match its
``x-amz-checksum-sha256``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from corrupting_proxy import CorruptingProxy, corrupting_proxy
from storage_servers import AWS_REGION, GCSBucketView, LocalServer, S3BucketView

from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.checksums import Checksum, file_checksum
from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator
from airflow_provider_cloud4wi.transfers.streaming import PartStream, PartUploadError

MARKER = b"<<flip-me>>"
MIB = 1024 * 1024
MEDIA_TYPE = "application/x-ndjson"
UTC = dt.timezone.utc


def _write(path: Path, size: int, *, marker_at: int = 100) -> Path:
    """A file of ``size`` bytes (not all alike) with the proxy's marker at ``marker_at``."""
    block = hashlib.sha256(path.name.encode()).digest() * 2048
    data = (block * (size // len(block) + 1))[:size]
    path.write_bytes(data[:marker_at] + MARKER + data[marker_at + len(MARKER) :])
    return path


def _wrong(checksum: Checksum) -> Checksum:
    """A checksum of the same algorithm that belongs to other bytes."""
    digest = bytearray(base64.b64decode(checksum.value))
    digest[0] ^= 0xFF
    return Checksum(checksum.algorithm, base64.b64encode(bytes(digest)).decode("ascii"))


# ----------------------------------------------------------------------------- S3
def _s3_operator(s3_bucket: S3BucketView) -> Cloud4WiEventsToS3Operator:
    return Cloud4WiEventsToS3Operator(task_id="export", s3_bucket=s3_bucket.name)


def _aws_connection(set_connection: Callable[..., str], url: str, **extra: Any) -> None:
    set_connection(
        "aws_default",
        "aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": url, "region_name": AWS_REGION, **extra},
    )


#: Multipart from 5 MiB on, in parts of 5 MiB (S3's smallest), set as an Airflow user would.
SMALL_PARTS = {
    "service_config": {
        "s3": {"transfer_config_args": {"multipart_threshold": 5 * MIB, "multipart_chunksize": 5 * MIB}}
    }
}


@pytest.fixture
def s3_proxy(
    s3_bucket: S3BucketView, moto_server: LocalServer, set_connection: Callable[..., str]
) -> Iterator[CorruptingProxy]:
    """``aws_default`` sent through a corrupting proxy that refuses bodies S3 would refuse."""
    with corrupting_proxy(moto_server.url, MARKER, s3_checksums=True) as proxy:
        _aws_connection(set_connection, proxy.url, **SMALL_PARTS)
        yield proxy


def test_moto_stores_a_corrupted_body_with_the_sha256_the_operator_sent(
    s3_bucket: S3BucketView, moto_server: LocalServer, set_connection: Callable[..., str], tmp_path: Path
) -> None:
    # Why the S3 tests need the proxy's check: moto keeps the header's value and the bad body.
    from botocore.exceptions import FlexibleChecksumError

    path = _write(tmp_path / "part.jsonl.gz", 4096)
    checksum = file_checksum(path, "SHA256")
    with corrupting_proxy(moto_server.url, MARKER) as proxy:
        _aws_connection(set_connection, proxy.url)
        proxy.state.armed = True
        _s3_operator(s3_bucket).upload_file(path, s3_bucket.name, "k.jsonl.gz", checksum, MEDIA_TYPE)

    (put,) = [headers for method, _, headers in proxy.state.requests if method == "PUT"]
    assert put["x-amz-checksum-sha256"] == checksum.value
    assert proxy.state.corrupted == 1
    stored = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="k.jsonl.gz", ChecksumMode="ENABLED")
    assert stored["ChecksumSHA256"] == checksum.value
    # Only a reader that checks the stored checksum (boto3 does by default) notices.
    with pytest.raises(FlexibleChecksumError, match=re.escape(checksum.value)):
        s3_bucket.read("k.jsonl.gz")


@pytest.mark.parametrize("size", [4096, 11 * MIB], ids=["put-object", "multipart"])
def test_s3_refuses_a_corrupted_upload_and_keeps_the_previous_object(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    from botocore.exceptions import ClientError

    s3_bucket.put("kept.jsonl.gz", b"the previous export")
    # In the multipart case the marker sits in the second of three parts.
    path = _write(tmp_path / "part.jsonl.gz", size, marker_at=size // 2)
    checksum = file_checksum(path, "SHA256")
    operator = _s3_operator(s3_bucket)
    s3_proxy.state.armed = True

    for key in ("kept.jsonl.gz", "new.jsonl.gz"):
        with pytest.raises(ClientError, match="BadDigest"):
            operator.upload_file(path, s3_bucket.name, key, checksum, MEDIA_TYPE)

    assert s3_proxy.state.refused == 2
    assert s3_bucket.keys() == ["kept.jsonl.gz"]
    assert s3_bucket.read("kept.jsonl.gz") == b"the previous export"
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


@pytest.mark.parametrize("size", [4096, 11 * MIB], ids=["put-object", "multipart"])
def test_s3_stores_a_good_upload_with_the_local_sha256(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    path = _write(tmp_path / "part.jsonl.gz", size)
    checksum = file_checksum(path, "SHA256")

    _s3_operator(s3_bucket).upload_file(path, s3_bucket.name, "k.jsonl.gz", checksum, MEDIA_TYPE)

    data = s3_bucket.read("k.jsonl.gz")
    assert data == path.read_bytes()
    assert base64.b64encode(hashlib.sha256(data).digest()).decode() == checksum.value
    assert s3_bucket.content_type("k.jsonl.gz") == MEDIA_TYPE
    stored = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="k.jsonl.gz", ChecksumMode="ENABLED")
    sent = [headers for method, _, headers in s3_proxy.state.requests if method == "PUT"]
    if size < 5 * MIB:
        assert stored["ChecksumSHA256"] == checksum.value
        assert [headers["x-amz-checksum-sha256"] for headers in sent] == [checksum.value]
    else:
        # S3 keeps a checksum of the parts' SHA-256s; each part was checked against its own.
        parts = [data[start : start + 5 * MIB] for start in range(0, size, 5 * MIB)]
        digests = [hashlib.sha256(part).digest() for part in parts]
        assert [headers["x-amz-checksum-sha256"] for headers in sent] == [
            base64.b64encode(digest).decode() for digest in digests
        ]
        composite = base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()
        # S3 appends "-<number of parts>"; moto's HeadObject does not.
        assert stored["ChecksumSHA256"] in (composite, f"{composite}-{len(parts)}")


def test_s3_multipart_upload_of_a_file_that_is_not_the_checksummed_one_is_aborted(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    s3_bucket.put("k.jsonl.gz", b"the previous export")
    path = _write(tmp_path / "part.jsonl.gz", 6 * MIB)
    stale = _wrong(file_checksum(path, "SHA256"))

    with pytest.raises(ValueError, match="changed after its checksum"):
        _s3_operator(s3_bucket).upload_file(path, s3_bucket.name, "k.jsonl.gz", stale, MEDIA_TYPE)

    assert s3_bucket.read("k.jsonl.gz") == b"the previous export"
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_s3_lists_reads_and_aborts_what_it_is_asked(s3_bucket: S3BucketView) -> None:
    operator = _s3_operator(s3_bucket)
    s3_bucket.put("a/one.jsonl.gz", b"1")
    s3_bucket.put("a/two.jsonl.gz", b"2")
    s3_bucket.put("b/three.jsonl.gz", b"3")
    client = s3_bucket.client
    for key in ("a/stale.jsonl.gz", "a/live.jsonl.gz", "b/other.jsonl.gz"):
        client.create_multipart_upload(Bucket=s3_bucket.name, Key=key)
    asked: list[tuple[str, dt.datetime]] = []

    def should_abort(key: str, initiated: dt.datetime) -> bool:
        asked.append((key, initiated))
        return key.endswith("stale.jsonl.gz")

    listed = operator.list_objects(s3_bucket.name, "a/")
    aborted = operator.abort_open_uploads(s3_bucket.name, "a/", should_abort)

    assert [item.key for item in listed] == ["a/one.jsonl.gz", "a/two.jsonl.gz"]
    assert all(
        item.updated.tzinfo is not None and item.updated.utcoffset() == dt.timedelta(0) for item in listed
    )
    assert operator.read_object(s3_bucket.name, "a/two.jsonl.gz") == b"2"
    assert operator.read_object(s3_bucket.name, "a/missing.json") is None
    assert aborted == ["a/stale.jsonl.gz"]
    assert sorted(key for key, _ in asked) == ["a/live.jsonl.gz", "a/stale.jsonl.gz"]
    assert all(initiated.utcoffset() == dt.timedelta(0) for _, initiated in asked)
    still_open = client.list_multipart_uploads(Bucket=s3_bucket.name)["Uploads"]
    assert sorted(upload["Key"] for upload in still_open) == ["a/live.jsonl.gz", "b/other.jsonl.gz"]


# ----------------------------------------------------------------------------- GCS
def _gcs_operator(gcs_bucket: GCSBucketView) -> Cloud4WiEventsToGCSOperator:
    return Cloud4WiEventsToGCSOperator(task_id="export", bucket=gcs_bucket.name)


@pytest.fixture
def gcs_proxy(
    gcs_bucket: GCSBucketView, gcs_emulator: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CorruptingProxy]:
    """The operators' GCS clients sent through a corrupting proxy to the emulator (and GCS's check of
    a resumable upload's final CRC32C, which the emulator lacks)."""
    with corrupting_proxy(gcs_emulator.url, MARKER, gcs_final_hashes=True) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        yield proxy


#: The google-cloud-storage client uploads up to 8 MiB in one request, more as a resumable upload.
GCS_SIZES = pytest.mark.parametrize("size", [4096, 9 * MIB], ids=["multipart", "resumable"])


@GCS_SIZES
def test_gcs_refuses_a_corrupted_upload_and_keeps_the_previous_object(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    from google.api_core.exceptions import BadRequest

    gcs_bucket.put("kept.jsonl.gz", b"the previous export")
    path = _write(tmp_path / "part.jsonl.gz", size, marker_at=size // 2)
    checksum = file_checksum(path, "CRC32C")
    operator = _gcs_operator(gcs_bucket)
    gcs_proxy.state.armed = True

    for key in ("kept.jsonl.gz", "new.jsonl.gz"):
        with pytest.raises(BadRequest, match="doesn't match calculated"):
            operator.upload_file(path, gcs_bucket.name, key, checksum, MEDIA_TYPE)

    assert gcs_proxy.state.corrupted == 2
    assert gcs_bucket.keys() == ["kept.jsonl.gz"]
    assert gcs_bucket.read("kept.jsonl.gz") == b"the previous export"


@GCS_SIZES
def test_gcs_checks_the_crc32c_the_operator_states(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    from google.api_core.exceptions import BadRequest

    # A good body with somebody else's CRC32C is refused: the store checks our value, not its own.
    gcs_bucket.put("kept.jsonl.gz", b"the previous export")
    path = _write(tmp_path / "part.jsonl.gz", size)

    with pytest.raises(BadRequest, match="CRC32C"):
        _gcs_operator(gcs_bucket).upload_file(
            path, gcs_bucket.name, "kept.jsonl.gz", _wrong(file_checksum(path, "CRC32C")), MEDIA_TYPE
        )

    assert gcs_bucket.read("kept.jsonl.gz") == b"the previous export"


@GCS_SIZES
def test_gcs_stores_a_good_upload_with_the_local_crc32c(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    path = _write(tmp_path / "part.jsonl.gz", size)
    checksum = file_checksum(path, "CRC32C")

    _gcs_operator(gcs_bucket).upload_file(path, gcs_bucket.name, "k.jsonl.gz", checksum, MEDIA_TYPE)

    blob = gcs_bucket.bucket.get_blob("k.jsonl.gz")
    assert blob.crc32c == checksum.value
    assert blob.md5_hash == file_checksum(path, "MD5").value
    assert blob.content_type == MEDIA_TYPE
    assert gcs_bucket.read("k.jsonl.gz") == path.read_bytes()
    assert gcs_proxy.state.corrupted == 0
    started = {
        url.split("uploadType=")[1].split("&")[0]
        for _, url, _ in gcs_proxy.state.requests
        if "uploadType=" in url
    }
    assert started == {"resumable" if size > 8 * MIB else "multipart"}


def test_gcs_lists_reads_and_has_no_uploads_to_abort(gcs_bucket: GCSBucketView, tmp_path: Path) -> None:
    operator = _gcs_operator(gcs_bucket)
    gcs_bucket.put("a/one.jsonl.gz", b"1")
    gcs_bucket.put("a/two.jsonl.gz", b"2")
    gcs_bucket.put("b/three.jsonl.gz", b"3")

    listed = operator.list_objects(gcs_bucket.name, "a/")

    assert sorted(item.key for item in listed) == ["a/one.jsonl.gz", "a/two.jsonl.gz"]
    assert all(item.updated.utcoffset() == dt.timedelta(0) for item in listed)
    assert operator.read_object(gcs_bucket.name, "a/two.jsonl.gz") == b"2"
    assert operator.read_object(gcs_bucket.name, "a/missing.json") is None
    assert operator.abort_open_uploads(gcs_bucket.name, "a/", lambda key, initiated: True) == []


def _stream(operator: Cloud4WiEventsTransferBaseOperator, bucket: str, key: str, data: bytes) -> Any:
    """Write ``data`` through a part upload of ``key`` in 1 MiB writes; the finished stream."""
    upload = operator.open_part_upload(bucket, key, MEDIA_TYPE)
    assert upload is not None
    sink = PartStream(upload)
    try:
        for start in range(0, len(data), MIB):
            sink.write(data[start : start + MIB])
        streamed = sink.finish()
        sink.complete()
    except BaseException:
        sink.discard()
        upload.abort()
        raise
    return streamed


def test_s3_stores_an_object_streamed_in_verified_parts_with_its_sha256(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    data = _write(tmp_path / "object", 11 * MIB).read_bytes()

    streamed = _stream(_s3_operator(s3_bucket), s3_bucket.name, "streamed.jsonl", data)

    assert streamed.parts == 3  # 5 MiB, 5 MiB, then the last 1 MiB
    assert streamed.checksum == Checksum("SHA256", base64.b64encode(hashlib.sha256(data).digest()).decode())
    assert s3_bucket.read("streamed.jsonl") == data
    assert s3_proxy.state.refused == 0


def test_s3_refuses_a_corrupted_streamed_part_and_keeps_the_previous_object(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    s3_bucket.put("kept.jsonl", b"the previous export")
    data = _write(tmp_path / "object", 11 * MIB, marker_at=8 * MIB).read_bytes()
    s3_proxy.state.armed = True

    with pytest.raises(PartUploadError, match="BadDigest"):
        _stream(_s3_operator(s3_bucket), s3_bucket.name, "kept.jsonl", data)

    assert s3_proxy.state.refused == 1
    assert s3_bucket.read("kept.jsonl") == b"the previous export"
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_s3_stores_an_empty_streamed_object_in_one_put(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy
) -> None:
    streamed = _stream(_s3_operator(s3_bucket), s3_bucket.name, "empty.jsonl", b"")

    assert streamed.parts == 1
    assert s3_bucket.read("empty.jsonl") == b""
    assert [method for method, _, _ in s3_proxy.state.requests] == ["PUT"]


def test_s3_stores_a_streamed_object_under_one_part_in_one_put_with_its_sha256(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    data = _write(tmp_path / "object", 2 * MIB).read_bytes()

    streamed = _stream(_s3_operator(s3_bucket), s3_bucket.name, "small.jsonl", data)

    ((method, path, headers),) = s3_proxy.state.requests
    assert (method, "?" in path) == ("PUT", False)
    assert headers["x-amz-checksum-sha256"] == streamed.checksum.value
    assert s3_bucket.read("small.jsonl") == data


def test_s3_refuses_a_corrupted_streamed_object_under_one_part_and_keeps_the_previous_object(
    s3_bucket: S3BucketView, s3_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    from botocore.exceptions import ClientError

    s3_bucket.put("kept.jsonl", b"the previous export")
    data = _write(tmp_path / "object", 2 * MIB, marker_at=MIB).read_bytes()
    s3_proxy.state.armed = True

    with pytest.raises(ClientError, match="BadDigest"):
        _stream(_s3_operator(s3_bucket), s3_bucket.name, "kept.jsonl", data)

    assert s3_proxy.state.refused == 1
    assert s3_bucket.read("kept.jsonl") == b"the previous export"


def _crc32c(data: bytes) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_gcs_streams_an_object_in_chunks_and_states_its_crc32c_with_the_last_one(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    data = _write(tmp_path / "object", 19 * MIB).read_bytes()

    streamed = _stream(_gcs_operator(gcs_bucket), gcs_bucket.name, "streamed.jsonl", data)

    assert streamed.checksum == Checksum("CRC32C", _crc32c(data))
    assert gcs_bucket.read("streamed.jsonl") == data
    chunks = [headers for method, path, headers in gcs_proxy.state.requests if "upload_id=" in path]
    assert len(chunks) == 3  # 8 MiB, 8 MiB, then the last 3 MiB
    assert [chunk.get("x-goog-hash") for chunk in chunks] == [None, None, f"crc32c={streamed.checksum.value}"]
    assert chunks[-1]["content-range"].endswith(f"/{len(data)}")
    assert gcs_proxy.state.refused == 0


def test_gcs_refuses_a_corrupted_streamed_object_and_keeps_the_previous_one(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    gcs_bucket.put("kept.jsonl", b"the previous export")
    data = _write(tmp_path / "object", 19 * MIB, marker_at=MIB).read_bytes()
    gcs_proxy.state.armed = True

    from google.cloud.storage.exceptions import InvalidResponse

    with pytest.raises(InvalidResponse, match="400"):
        _stream(_gcs_operator(gcs_bucket), gcs_bucket.name, "kept.jsonl", data)

    assert (gcs_proxy.state.corrupted, gcs_proxy.state.refused) == (1, 1)
    assert gcs_bucket.read("kept.jsonl") == b"the previous export"
    cancels = [path for method, path, _ in gcs_proxy.state.requests if method == "DELETE"]
    assert len(cancels) == 1
    assert "upload_id=" in cancels[0]


@pytest.mark.parametrize("size", [0, 2 * MIB], ids=["empty", "2MiB"])
def test_gcs_stores_a_streamed_object_under_one_part_in_one_request_with_its_crc32c(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path, size: int
) -> None:
    data = _write(tmp_path / "object", size).read_bytes() if size else b""

    streamed = _stream(_gcs_operator(gcs_bucket), gcs_bucket.name, "small.jsonl", data)

    # (the client also reads the bucket's metadata once: not an upload)
    ((method, path, _),) = [request for request in gcs_proxy.state.requests if request[0] != "GET"]
    assert (method, "uploadType=multipart" in path) == ("POST", True)
    assert streamed.checksum == Checksum("CRC32C", _crc32c(data))
    assert gcs_bucket.read("small.jsonl") == data


def test_gcs_refuses_a_corrupted_streamed_object_under_one_part_and_keeps_the_previous_one(
    gcs_bucket: GCSBucketView, gcs_proxy: CorruptingProxy, tmp_path: Path
) -> None:
    gcs_bucket.put("kept.jsonl", b"the previous export")
    data = _write(tmp_path / "object", 2 * MIB, marker_at=MIB).read_bytes()
    gcs_proxy.state.armed = True

    with pytest.raises(Exception, match="CRC32C"):
        _stream(_gcs_operator(gcs_bucket), gcs_bucket.name, "kept.jsonl", data)

    assert gcs_proxy.state.corrupted == 1
    assert gcs_bucket.read("kept.jsonl") == b"the previous export"


def test_an_aborted_gcs_stream_publishes_nothing_even_when_its_writer_is_collected(
    gcs_bucket: GCSBucketView, tmp_path: Path
) -> None:
    # The emulator does not implement cancelling a session (it answers 501), as a lost DELETE on
    # GCS would leave it open: the writer, a file object, must not finalize it when collected.
    gcs_bucket.put("kept.jsonl", b"the previous export")
    upload = _gcs_operator(gcs_bucket).open_part_upload(gcs_bucket.name, "kept.jsonl", MEDIA_TYPE)
    upload.send(1, _write(tmp_path / "part", 9 * MIB).read_bytes())  # one 8 MiB chunk goes up

    upload.abort()
    del upload
    gc.collect()

    assert gcs_bucket.keys() == ["kept.jsonl"]
    assert gcs_bucket.read("kept.jsonl") == b"the previous export"
