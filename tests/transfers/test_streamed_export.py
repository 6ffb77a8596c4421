"""One JSON Lines object on S3 goes up in parts while the pull runs: no local file, all or nothing."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from storage_servers import S3BucketView
from transfer_helpers import decode_lines

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiTransientError
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

UTC = dt.timezone.utc
#: Seven days of the simulator's data: ~20,000 events, ~9 MB of plain JSON Lines, so the object
#: goes in two parts (5 MiB, then the rest).
WINDOW = (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 9, tzinfo=UTC))
KEY = "exports/week.jsonl"


def _export(s3_bucket: S3BucketView, **kwargs: Any) -> dict[str, Any]:
    operator = Cloud4WiEventsToS3Operator(
        task_id="export",
        s3_bucket=s3_bucket.name,
        s3_key=KEY,
        compression=None,
        window_start=WINDOW[0].isoformat(),
        window_end=WINDOW[1].isoformat(),
        **kwargs,
    )
    return operator.execute(context={})  # type: ignore[arg-type]


@pytest.fixture
def sim(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> Cloud4WiSimulator:
    """The default simulator, with connection ``cloud4wi_default`` pointing at it."""
    return cloud4wi_simulator


def test_a_window_larger_than_a_part_lands_as_one_object_with_its_sha256_in_the_manifest(
    s3_bucket: S3BucketView, sim: Cloud4WiSimulator, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    caplog.set_level(logging.INFO)

    result = _export(s3_bucket)

    stored = s3_bucket.read(KEY)
    assert decode_lines(stored, compressed=False) == list(sim.expected_events(*WINDOW))
    assert result["bytes"] == len(stored) > 5 * 1024 * 1024
    manifest = s3_bucket.read("exports/week.manifest.json").decode()
    assert base64.b64encode(hashlib.sha256(stored).digest()).decode() in manifest
    log = caplog.text + capsys.readouterr().out
    assert "while pulling" in log
    assert "in 2 part(s)" in log


def test_a_pull_that_fails_midway_aborts_the_upload_and_leaves_the_previous_export(
    s3_bucket: S3BucketView, sim: Cloud4WiSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export(s3_bucket)
    before = {key: s3_bucket.read(key) for key in s3_bucket.keys("")}
    real_events = Cloud4WiEventsTransferBaseOperator._events

    def failing_after_a_part(self: Any, hook: Any, window: Any) -> tuple[Iterator[bytes], Any]:
        events, stats = real_events(self, hook, window)

        def lines() -> Generator[bytes, None, None]:
            with contextlib.closing(events):
                # ~7.8 MB of lines: the first 5 MiB part is sent before the pull fails.
                yield from itertools.islice(events, 17_000)
            raise Cloud4WiTransientError("the API went away")

        return lines(), stats

    monkeypatch.setattr(Cloud4WiEventsTransferBaseOperator, "_events", failing_after_a_part)
    with pytest.raises(Cloud4WiTransientError, match="went away"):
        _export(s3_bucket)

    assert {key: s3_bucket.read(key) for key in s3_bucket.keys("")} == before
    assert s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []
