"""PartStream: bytes gathered into parts of the store's size, hashed whole, sent by one uploader."""

from __future__ import annotations

import base64
import hashlib

import pytest

from airflow_provider_cloud4wi.transfers.checksums import Checksum
from airflow_provider_cloud4wi.transfers.streaming import PartStream, PartUploadError


class FakeUpload:
    """Records the parts sent and an object stored whole; fails on part ``fail_on`` if given."""

    def __init__(
        self, part_bytes: int, fail_on: int | None = None, checksum_algorithm: str = "SHA256"
    ) -> None:
        self.part_bytes = part_bytes
        self.checksum_algorithm = checksum_algorithm
        self.fail_on = fail_on
        self.parts: list[tuple[int, bytes]] = []
        self.whole: bytes | None = None
        self.whole_checksum: str | None = None
        self.completed = False

    def send(self, number: int, data: bytes) -> None:
        if number == self.fail_on:
            raise OSError("connection reset by peer")
        self.parts.append((number, data))

    def complete(self) -> None:
        self.completed = True

    def put_whole(self, data: bytes, checksum: str) -> None:
        self.whole, self.whole_checksum = data, checksum

    def abort(self) -> None:
        """Not used by the stream itself."""


def test_parts_are_at_least_the_part_size_in_order_and_add_up_to_the_bytes_written() -> None:
    upload = FakeUpload(part_bytes=10)
    stream = PartStream(upload)
    chunks = [bytes([n]) * 4 for n in range(9)]
    for chunk in chunks:
        stream.write(chunk)

    streamed = stream.finish()

    assert [number for number, _ in upload.parts] == [1, 2, 3]
    assert [len(data) for _, data in upload.parts] == [12, 12, 12]
    assert b"".join(data for _, data in upload.parts) == b"".join(chunks)
    whole = base64.b64encode(hashlib.sha256(b"".join(chunks)).digest()).decode()
    assert (streamed.size_bytes, streamed.checksum, streamed.parts) == (36, Checksum("SHA256", whole), 3)


def test_a_failed_part_is_raised_to_the_writer_with_the_stores_error_as_its_cause() -> None:
    stream = PartStream(FakeUpload(part_bytes=4, fail_on=1))
    stream.write(b"12345")  # part 1, which fails in the uploader

    with pytest.raises(PartUploadError, match="connection reset") as raised:
        stream.finish()

    assert isinstance(raised.value.__cause__, OSError)


def test_a_stream_of_no_bytes_is_stored_whole_as_an_empty_object() -> None:
    upload = FakeUpload(part_bytes=4)
    stream = PartStream(upload)

    streamed = stream.finish()
    stream.complete()

    assert (upload.parts, upload.whole, upload.completed) == ([], b"", False)
    assert (streamed.size_bytes, streamed.parts) == (0, 1)


def test_a_stream_smaller_than_one_part_sends_no_part_and_is_stored_whole() -> None:
    upload = FakeUpload(part_bytes=10)
    stream = PartStream(upload)
    stream.write(b"12345")
    stream.write(b"678")

    streamed = stream.finish()
    assert upload.whole is None  # nothing is stored before complete()
    stream.complete()

    assert (upload.parts, upload.whole, upload.completed) == ([], b"12345678", False)
    assert (streamed.size_bytes, streamed.parts) == (8, 1)
    assert upload.whole_checksum == streamed.checksum.value
    assert streamed.checksum.value == base64.b64encode(hashlib.sha256(b"12345678").digest()).decode()


def test_a_stream_of_several_parts_is_completed_not_stored_whole() -> None:
    upload = FakeUpload(part_bytes=4)
    stream = PartStream(upload)
    stream.write(b"123456")

    stream.finish()
    stream.complete()

    assert (upload.parts, upload.whole, upload.completed) == ([(1, b"123456")], None, True)


def test_a_discarded_stream_sends_nothing_more() -> None:
    upload = FakeUpload(part_bytes=100)
    stream = PartStream(upload)
    stream.write(b"x" * 50)

    stream.discard()

    assert upload.parts == []


def test_parts_grow_after_a_thousand_so_any_object_fits_in_ten_thousand() -> None:
    upload = FakeUpload(part_bytes=1)
    stream = PartStream(upload)
    for _ in range(1_000):
        stream.write(b"x")  # a part each
    stream.write(b"a")  # part 1,001 needs two bytes
    stream.write(b"b")

    stream.finish()

    assert len(upload.parts) == 1_001
    assert upload.parts[-1] == (1_001, b"ab")


def test_the_stream_hashes_with_the_checksum_its_store_verifies() -> None:
    import google_crc32c

    upload = FakeUpload(part_bytes=10, checksum_algorithm="CRC32C")
    stream = PartStream(upload)
    stream.write(bytearray(b"0123456789abc"))  # one part; the compressor hands bytearrays
    stream.write(b"def")

    streamed = stream.finish()

    crc32c = base64.b64encode(google_crc32c.Checksum(b"0123456789abcdef").digest()).decode()
    assert streamed.checksum == Checksum("CRC32C", crc32c)
