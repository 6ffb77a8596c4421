"""One JSON Lines object goes up in parts while the pull runs (S3, GCS): no local file, all or nothing."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Generator, Iterator
from typing import Any

import google_crc32c
import pytest
from storage_servers import S3BucketView
from transfer_helpers import StorageCase, decode_lines

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiTransientError
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

UTC = dt.timezone.utc
#: Ten days of the simulator's data: ~24,700 events, ~11 MB of plain JSON Lines, so the object
#: goes in several parts (S3: of 5 MiB; GCS: of 8 MiB).
WINDOW = (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 12, tzinfo=UTC))
KEY = "exports/week.jsonl"


def _export(storage: StorageCase, **kwargs: Any) -> dict[str, Any]:
    return storage.run(WINDOW[0].isoformat(), WINDOW[1].isoformat(), key=KEY, compression=None, **kwargs)  # type: ignore[arg-type]


def _checksum_of(storage: StorageCase, data: bytes) -> str:
    """The checksum the store verifies, as the manifest records it."""
    digest = (
        hashlib.sha256(data).digest()
        if storage.bucket.scheme == "s3"
        else google_crc32c.Checksum(data).digest()
    )
    return base64.b64encode(digest).decode()


@pytest.fixture
def sim(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator, with connection ``cloud4wi_default`` pointing at it."""
    return cloud4wi_simulator


def test_a_window_larger_than_a_part_lands_as_one_object_with_the_stores_checksum_in_the_manifest(
    storage: StorageCase, sim: Cloud4WiSimulator, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    caplog.set_level(logging.INFO)

    result = _export(storage)

    stored = storage.bucket.read(KEY)
    assert decode_lines(stored, compressed=False) == list(sim.expected_events(*WINDOW))
    assert result["bytes"] == len(stored) > 8 * 1024 * 1024
    manifest = storage.bucket.read("exports/week.manifest.json").decode()
    assert _checksum_of(storage, stored) in manifest
    log = caplog.text + capsys.readouterr().out
    assert "while pulling" in log
    assert "part(s)" in log
    assert "in 1 part(s)" not in log


def _fail_after(monkeypatch: pytest.MonkeyPatch, events_before_failing: int) -> None:
    """Make the pull fail with a transient error after at least that many events."""
    real_events = Cloud4WiEventsTransferBaseOperator._events

    def failing_after_a_part(
        self: Any, hook: Any, window: Any, *, blocks: bool
    ) -> tuple[Iterator[bytes], Any]:
        events, stats = real_events(self, hook, window, blocks=blocks)

        def lines() -> Generator[bytes, None, None]:
            handed_on = 0
            with contextlib.closing(events):
                for item in events:  # a line, or a block of a page's lines
                    yield item
                    handed_on += item.count(b"\n") if blocks else 1
                    if handed_on >= events_before_failing:
                        break
            raise Cloud4WiTransientError("the API went away")

        return lines(), stats

    monkeypatch.setattr(Cloud4WiEventsTransferBaseOperator, "_events", failing_after_a_part)


def test_a_pull_that_fails_midway_aborts_the_upload_and_leaves_the_previous_export(
    storage: StorageCase, sim: Cloud4WiSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(storage)
    before = storage.snapshot()
    # ~9.5 MB of lines: the first part (on GCS, its first chunk) is sent before the pull fails.
    _fail_after(monkeypatch, 21_000)

    with pytest.raises(Cloud4WiTransientError, match="went away"):
        _export(storage)

    assert storage.snapshot() == before


def test_a_failed_s3_stream_leaves_no_open_multipart_upload(
    s3_bucket: S3BucketView, sim: Cloud4WiSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {key: s3_bucket.read(key) for key in s3_bucket.keys("")}
    # ~7.8 MB of lines: the first 5 MiB part is sent before the pull fails.
    _fail_after(monkeypatch, 17_000)
    operator = Cloud4WiEventsToS3Operator(
        task_id="export",
        s3_bucket=s3_bucket.name,
        s3_key=KEY,
        compression=None,
        window_start=WINDOW[0].isoformat(),
        window_end=WINDOW[1].isoformat(),
    )

    with pytest.raises(Cloud4WiTransientError, match="went away"):
        operator.execute(context={})  # type: ignore[arg-type]

    assert {key: s3_bucket.read(key) for key in s3_bucket.keys("")} == before
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []
