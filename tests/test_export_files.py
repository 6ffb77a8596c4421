"""Tests of the export file writing: formats, compression, grouping by event type, temporary files."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cloud4wi import export_files
from airflow_provider_cloud4wi.export_files import (
    MAX_EVENT_TYPE_GROUPS,
    UNKNOWN_EVENT_TYPE,
    FileGroup,
    check_file_format,
    check_partition_by,
    event_type_group,
    file_extension,
    media_type,
    resolve_compression,
    write_export_files,
)
from airflow_provider_cloud4wi.writer import write_parts

pq = pytest.importorskip("pyarrow.parquet")

TYPES = ["visit", "signup", "visit", "login", "visit", "geo_visit", "signup"]


def event(n: int, event_type: Any = "visit", **extra: Any) -> bytes:
    """One event as the API's compact JSON text."""
    document = {"customerId": f"c{n % 5}", "event": {"type": event_type, "id": f"{n:032x}l"}, **extra}
    return json.dumps(document, separators=(",", ":")).encode()


def stream(count: int, types: list[str] = TYPES) -> list[bytes]:
    return [event(n, types[n % len(types)]) for n in range(count)]


def read_lines(path: Path) -> list[bytes]:
    """The lines of a JSON Lines or Parquet (its ``raw`` column) file."""
    if path.name.endswith(".parquet"):
        return [raw.encode() for raw in pq.read_table(path).column("raw").to_pylist()]
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).splitlines()


def group_lines(groups: list[FileGroup]) -> dict[str | None, list[bytes]]:
    return {g.event_type: [line for part in g.parts for line in read_lines(part.path)] for g in groups}


FORMATS = pytest.mark.parametrize("file_format", ["jsonl", "parquet"])


@FORMATS
def test_grouping_by_type_keeps_stream_order_within_each_type_and_loses_no_event(file_format: str) -> None:
    lines = stream(70)
    with write_export_files(lines, file_format=file_format, partition_by="event_type") as groups:
        found = group_lines(groups)
    assert found == {t: [line for line in lines if event_type_group(line) == t] for t in set(TYPES)}
    assert sum(len(members) for members in found.values()) == len(lines)


def test_groups_come_sorted_by_type_name_one_per_type_present() -> None:
    with write_export_files(stream(20), partition_by="event_type") as groups:
        assert [g.event_type for g in groups] == ["geo_visit", "login", "signup", "visit"]


@FORMATS
def test_each_type_is_split_into_parts_of_at_most_max_events_per_file(file_format: str) -> None:
    lines = [event(n, "visit") for n in range(25)] + [event(100 + n, "signup") for n in range(3)]
    with write_export_files(
        lines, file_format=file_format, partition_by="event_type", max_events_per_file=10
    ) as groups:
        assert {g.event_type: [p.events for p in g.parts] for g in groups} == {
            "signup": [3],
            "visit": [10, 10, 5],
        }
        assert [p.index for p in groups[1].parts] == [0, 1, 2]
        assert group_lines(groups)["visit"] == lines[:25]


def test_a_group_reports_the_events_of_its_parts() -> None:
    with write_export_files(stream(14), partition_by="event_type", max_events_per_file=2) as groups:
        assert {g.event_type: g.events for g in groups} == Counter(TYPES * 2)


@pytest.mark.parametrize(
    "line",
    [
        b'{"event":{"id":"x"}}',
        b'{"event":{"type":7}}',
        b'{"event":{"type":null}}',
        b'{"event":"visit"}',
        b'{"customerId":"c"}',
        b'{"event":{"type":"../../etc"}}',
        b'{"event":{"type":"a/b"}}',
        b'{"event":{"type":"Visit"}}',
        b'{"event":{"type":""}}',
        b'{"event":{"type":"visit\\n"}}',
        b'{"event":{"type":"' + b"x" * 65 + b'"}}',
        b"[1,2]",
        b"not json",
        b"\xff\xfe",
    ],
)
def test_an_event_whose_type_cannot_name_a_path_goes_unchanged_to_the_unknown_group(line: bytes) -> None:
    with write_export_files([event(1), line], compression=None, partition_by="event_type") as groups:
        assert group_lines(groups) == {UNKNOWN_EVENT_TYPE: [line], "visit": [event(1)]}


def test_the_unknown_group_keeps_its_files_inside_the_temporary_directory(tmp_path: Path) -> None:
    lines = [b'{"event":{"type":"../../escape"}}', b'{"event":{"type":"/abs"}}']
    with write_export_files(lines, partition_by="event_type", temp_dir=tmp_path) as groups:
        (group,) = groups
        assert group.event_type == UNKNOWN_EVENT_TYPE
        assert all(tmp_path in part.path.parents for part in group.parts)
    assert list(tmp_path.iterdir()) == []


def test_a_valid_type_the_docs_do_not_list_gets_a_group_of_its_own() -> None:
    with write_export_files([event(1, "teleport")], partition_by="event_type") as groups:
        assert [g.event_type for g in groups] == ["teleport"]


def test_mappings_are_grouped_like_lines() -> None:
    documents = [json.loads(line) for line in stream(10)] + [{"event": {"type": 3}}]
    with write_export_files(documents, compression=None, partition_by="event_type") as groups:
        found = {t: [json.loads(line) for line in lines] for t, lines in group_lines(groups).items()}
    assert found[UNKNOWN_EVENT_TYPE] == [{"event": {"type": 3}}]
    assert found["visit"] == [d for d in documents if d["event"]["type"] == "visit"]


def test_types_beyond_the_group_limit_go_to_the_unknown_group() -> None:
    types = [f"type_{n:03d}" for n in range(MAX_EVENT_TYPE_GROUPS + 3)]
    lines = [event(n, t) for n, t in enumerate(types)]
    with write_export_files(lines, compression=None, partition_by="event_type") as groups:
        found = group_lines(groups)
    assert set(found) == {*types[:MAX_EVENT_TYPE_GROUPS], UNKNOWN_EVENT_TYPE}
    assert found[UNKNOWN_EVENT_TYPE] == lines[MAX_EVENT_TYPE_GROUPS:]


@FORMATS
def test_an_empty_stream_partitioned_gives_no_group(file_format: str) -> None:
    with write_export_files([], file_format=file_format, partition_by="event_type") as groups:
        assert groups == []


@FORMATS
def test_an_empty_stream_unpartitioned_gives_one_group_of_one_empty_file(file_format: str) -> None:
    with write_export_files([], file_format=file_format, max_events_per_file=5) as groups:
        ((group,),) = [groups]
        assert group.event_type is None
        assert [p.events for p in group.parts] == [0]
        assert read_lines(group.parts[0].path) == []


def test_unpartitioned_json_lines_are_the_bytes_write_parts_writes() -> None:
    lines = stream(50)
    with (
        write_export_files(lines, max_events_per_file=20) as groups,
        write_parts(lines, max_events_per_file=20) as parts,
    ):
        assert [p.path.read_bytes() for p in groups[0].parts] == [p.path.read_bytes() for p in parts]


@pytest.mark.parametrize(
    ("file_format", "compression", "extension", "codec"),
    [
        ("jsonl", "auto", ".jsonl.gz", "gzip"),
        ("jsonl", None, ".jsonl", None),
        ("parquet", "auto", ".parquet", "zstd"),
        ("parquet", "snappy", ".parquet", "snappy"),
        ("parquet", None, ".parquet", None),
    ],
)
def test_the_files_are_named_for_their_format_and_codec(
    file_format: str, compression: str | None, extension: str, codec: str | None
) -> None:
    assert resolve_compression(file_format, compression) == codec
    assert file_extension(file_format, compression) == extension
    with write_export_files(stream(3), file_format=file_format, compression=compression) as groups:
        assert groups[0].parts[0].path.name == f"part-00000{extension}"


def test_parquet_files_record_the_codec_asked_for() -> None:
    with write_export_files(stream(3), file_format="parquet", compression="snappy") as groups:
        metadata = pq.ParquetFile(groups[0].parts[0].path).metadata
        assert metadata.row_group(0).column(0).compression == "SNAPPY"


def test_media_types_describe_each_format() -> None:
    assert [media_type("jsonl", "auto"), media_type("jsonl", None), media_type("parquet", "zstd")] == [
        "application/gzip",
        "application/x-ndjson",
        "application/vnd.apache.parquet",
    ]


def test_the_temporary_directory_is_private_named_and_removed_after_the_block(tmp_path: Path) -> None:
    with write_export_files(stream(9), partition_by="event_type", temp_dir=tmp_path) as groups:
        (directory,) = tmp_path.iterdir()
        assert directory.name.startswith("cloud4wi-events-")
        assert all(directory in part.path.parents for g in groups for part in g.parts)
    assert list(tmp_path.iterdir()) == []


@FORMATS
def test_the_temporary_directory_is_removed_when_the_block_fails(file_format: str, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="upload failed"),
        write_export_files(stream(9), file_format=file_format, partition_by="event_type", temp_dir=tmp_path),
    ):
        raise RuntimeError("upload failed")
    assert list(tmp_path.iterdir()) == []


@FORMATS
def test_a_stream_failing_midway_closes_every_open_writer_and_leaves_no_files(
    file_format: str, tmp_path: Path
) -> None:
    def failing() -> Iterator[bytes]:
        yield from stream(40)
        raise ConnectionError("API went away")

    threads_before = set(threading.enumerate())
    with (
        pytest.raises(ConnectionError, match="API went away"),
        write_export_files(failing(), file_format=file_format, partition_by="event_type", temp_dir=tmp_path),
    ):
        pytest.fail("the block must not run when the stream fails")
    assert list(tmp_path.iterdir()) == []
    # A threaded compressor left open would keep its thread.
    assert set(threading.enumerate()) <= threads_before


def test_buffers_of_all_groups_together_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_files, "_BUFFER_BUDGET_BYTES", 1 << 20)
    monkeypatch.setattr(export_files, "_BUDGET_CHECK_EVERY", 50)
    types = [f"type_{n}" for n in range(12)]
    padding = "x" * 2000

    def lines() -> Iterator[bytes]:  # about 20 MB, every type in turn
        for n in range(10_000):
            yield event(n, types[n % len(types)], padding=padding)

    tracemalloc.start()
    try:
        with write_export_files(lines(), file_format="parquet", partition_by="event_type") as groups:
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(g.events for g in groups) == 10_000
    assert peak < 6 * 1024 * 1024


@pytest.mark.parametrize("bad", ["csv", "JSONL", "", None, 1])
def test_an_unknown_file_format_is_refused_naming_the_choices(bad: Any) -> None:
    with pytest.raises(ValueError, match=r'file_format must be one of "jsonl", "parquet", not'):
        check_file_format(bad)


@pytest.mark.parametrize(
    ("file_format", "bad", "choices"),
    [
        ("jsonl", "zstd", r'"auto", "gzip", None'),
        ("jsonl", "GZIP", r'"auto", "gzip", None'),
        ("parquet", "lz4", r'"auto", "zstd", "snappy", "gzip", None'),
        ("parquet", "", r'"auto", "zstd", "snappy", "gzip", None'),
    ],
)
def test_a_codec_the_format_cannot_use_is_refused_naming_the_choices(
    file_format: str, bad: str, choices: str
) -> None:
    message = rf'compression for file_format="{file_format}" must be one of {choices}'
    with pytest.raises(ValueError, match=message):
        resolve_compression(file_format, bad)


@pytest.mark.parametrize("bad", ["date", "event.type", "", ["event_type"]])
def test_an_unknown_partition_by_is_refused_naming_the_choices(bad: Any) -> None:
    with pytest.raises(ValueError, match=r'partition_by must be one of None, "event_type", not'):
        check_partition_by(bad)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"file_format": "orc"}, "file_format"),
        ({"compression": "bz2"}, "compression"),
        ({"partition_by": "customer"}, "partition_by"),
        ({"max_events_per_file": 0}, "max_events_per_file"),
    ],
)
def test_bad_settings_are_refused_before_any_file_is_made(
    settings: dict[str, Any], named: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=named), write_export_files(stream(1), temp_dir=tmp_path, **settings):
        pytest.fail("unreachable")
    assert list(tmp_path.iterdir()) == []


def test_importing_the_module_imports_neither_airflow_nor_pyarrow() -> None:
    code = (
        "import sys, airflow_provider_cloud4wi.export_files; "
        "print(sorted({'airflow', 'pyarrow'} & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
