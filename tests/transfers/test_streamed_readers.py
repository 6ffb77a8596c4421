"""A gzip object uploaded in parts while the pull ran is plain gzip that the usual readers open."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import StorageCase

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

UTC = dt.timezone.utc
#: Sixteen hours at 10,002 events an hour: ~85 MB of JSON Lines, ~11 MB of gzip, so the object goes
#: up in parts on S3 (5 MiB) and in two chunks on GCS (8 MiB), four slices at a time.
WINDOW = (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 2, 16, tzinfo=UTC))
KEY = "exports/sixteen-hours.jsonl.gz"


@pytest.fixture(scope="module")
def busy_simulator() -> Iterator[Cloud4WiSimulator]:
    """A simulator with the benchmark's density, shared by the tests of this module."""
    simulator = Cloud4WiSimulator(events_per_hour=10_002).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def landed(
    storage: StorageCase,
    busy_simulator: Cloud4WiSimulator,
    connect: Callable[..., str],
    tmp_path: Path,
) -> tuple[Path, list[dict[str, Any]]]:
    """The exported object, downloaded to a local file, and the events it must hold."""
    connect(busy_simulator)
    result = storage.run(*WINDOW, key=KEY, max_concurrency=4)
    path = tmp_path / "sixteen-hours.jsonl.gz"
    path.write_bytes(storage.bucket.read(KEY))
    assert result["bytes"] > 8 * 1024 * 1024  # more than one part or chunk
    return path, list(busy_simulator.expected_events(*WINDOW))


def test_pythons_gzip_reads_every_event_in_order(landed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, expected = landed
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        assert [json.loads(line) for line in lines] == expected


def test_zcat_reads_the_same_text_as_pythons_gzip(landed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = landed
    text = subprocess.run(["zcat", str(path)], check=True, capture_output=True).stdout
    assert text == gzip.decompress(path.read_bytes())


def test_duckdb_reads_one_row_per_event(landed: tuple[Path, list[dict[str, Any]]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    path, expected = landed
    [(rows, ids)] = (
        duckdb.connect()
        .execute(
            "select count(*), count(distinct json_extract_string(json, '$.event.id')) "
            "from read_ndjson_objects(?)",
            [str(path)],
        )
        .fetchall()
    )
    assert rows == ids == len(expected)


def test_pyarrow_reads_one_row_per_event(landed: tuple[Path, list[dict[str, Any]]]) -> None:
    pa = pytest.importorskip("pyarrow")
    pa_json = pytest.importorskip("pyarrow.json")
    path, expected = landed
    # Only the keys every event has: the rest of an event's members differ by type.
    schema = pa.schema([("event", pa.struct([("id", pa.string()), ("type", pa.string())]))])
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    table = pa_json.read_json(pa.input_stream(str(path), compression="gzip"), parse_options=options)
    assert table.num_rows == len(expected)
    assert table.column("event").combine_chunks().field("id").to_pylist() == [
        event["event"]["id"] for event in expected
    ]
