"""Parquet exports and exports by event type, against S3 (moto) and GCS (emulator)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from typing import Any

import pyarrow.parquet as pq
import pytest
from transfer_helpers import RUN, StorageCase, decode_lines, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

KEY = "out/events.jsonl.gz"


def events_by_type(storage: StorageCase) -> dict[str, list[Any]]:
    manifest = storage.manifest("out/events.manifest.json")
    return {str(item.event_type): decode_lines(storage.bucket.read(item.key)) for item in manifest.objects}


def test_an_export_by_event_type_writes_one_object_per_type_present_with_only_its_events(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    result = storage.run(hour(1, 2), hour(1, 4), key=KEY, partition_by="event_type")

    expected = list(sim.expected_events(hour(1, 2), hour(1, 4)))
    present = sorted({event["event"]["type"] for event in expected})
    assert [re.sub(RUN, "<run>", key) for key in storage.data_names()] == [
        f"out/event_type={event_type}/events.<run>.jsonl.gz" for event_type in present
    ]
    stored = events_by_type(storage)
    for event_type, events in stored.items():
        assert events == [event for event in expected if event["event"]["type"] == event_type]
    assert result["event_count"] == len(expected)


def test_a_rerun_that_no_longer_finds_a_type_removes_that_types_object_and_nothing_else(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.run(hour(1, 2), hour(1, 3), key=KEY, partition_by="event_type")
    storage.run(hour(1, 3), hour(1, 4), key="out/next.jsonl.gz", partition_by="event_type")
    neighbour = {key: data for key, data in storage.snapshot().items() if "/next." in key}

    storage.run(hour(1, 2), hour(1, 3), key=KEY, partition_by="event_type", event_types=["visit"])

    assert list(events_by_type(storage)) == ["visit"]
    ours = [key for key in storage.data_names() if "/events." in key]
    assert [re.sub(RUN, "<run>", key) for key in ours] == ["out/event_type=visit/events.<run>.jsonl.gz"]
    assert {key: data for key, data in storage.snapshot().items() if "/next." in key} == neighbour


def test_an_export_by_type_with_parts_splits_each_type(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    storage.run(hour(1, 2), hour(1, 4), key=KEY, partition_by="event_type", max_events_per_file=10)

    manifest = storage.manifest("out/events.manifest.json")
    per_type = Counter(str(item.event_type) for item in manifest.objects)
    expected = Counter(event["event"]["type"] for event in sim.expected_events(hour(1, 2), hour(1, 4)))
    assert per_type == {event_type: -(-count // 10) for event_type, count in expected.items()}
    assert all(item.events <= 10 for item in manifest.objects)


def test_a_window_without_events_by_type_writes_only_a_manifest_of_nothing(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    start = hour(1, 2).replace(year=2023)
    result = storage.run(start, start.replace(hour=3), key=KEY, partition_by="event_type")
    assert storage.object_names() == ["out/events.manifest.json"]
    manifest = storage.manifest("out/events.manifest.json")
    assert (manifest.event_count, list(manifest.objects), result["objects"]) == (0, [], [])


def test_a_parquet_export_holds_one_row_per_event_with_the_event_as_sent_in_raw(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Any
) -> None:
    result = storage.run(hour(1, 2), hour(1, 3), file_format="parquet")

    key = default_key_of(hour(1, 2), hour(1, 3), ".parquet")
    assert storage.data_names() == [key]
    table = pq.read_table(io.BytesIO(storage.bucket.read(key)))
    expected = list(sim.expected_events(hour(1, 2), hour(1, 3)))
    assert [json.loads(raw) for raw in table.column("raw").to_pylist()] == expected
    assert table.column("customerId").to_pylist() == [event.get("customerId") for event in expected]
    assert storage.manifest(key).compression == "zstd"
    assert result["event_count"] == len(expected)
    assert storage.bucket.content_type(key) == "application/vnd.apache.parquet"


def test_a_parquet_rerun_writes_the_same_bytes(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Any
) -> None:
    storage.run(hour(1, 2), hour(1, 3), file_format="parquet")
    first = storage.data_snapshot()
    storage.run(hour(1, 2), hour(1, 3), file_format="parquet")
    assert storage.data_snapshot() == first


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"file_format": "csv"}, "file_format"),
        ({"partition_by": "customer"}, "partition_by"),
        ({"file_format": "jsonl", "compression": "zstd"}, "compression"),
    ],
)
def test_a_format_partition_or_compression_it_cannot_write_is_refused_when_the_dag_is_parsed(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Cloud4WiEventsToS3Operator(task_id="export", s3_bucket="b", **arguments)


def test_an_export_in_the_other_format_at_the_same_place_is_refused_before_the_pull(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.run(hour(1, 2), hour(1, 3))
    before = storage.snapshot()
    pulls = sim.stats["requests"]["organization_events"]

    with pytest.raises(
        ValueError, match=r"manifest of this window's export as jsonl.*give it a key of its own"
    ):
        storage.run(hour(1, 2), hour(1, 3), file_format="parquet")

    assert storage.snapshot() == before
    assert sim.stats["requests"]["organization_events"] == pulls
