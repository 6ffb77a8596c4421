"""Tests of the JSON Lines writer: content, compression, parts, temporary files, memory."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cloud4wi.writer import (
    check_compression,
    check_max_events_per_file,
    media_type,
    stdlib_gzip,
    write_blocks,
    write_parts,
    write_stream,
)


def sample_events(count: int) -> list[dict[str, Any]]:
    """Small documents shaped like Cloud4Wi events, each distinct."""
    return [
        {
            "customerId": f"c{n % 7}",
            "event": {"type": "visit", "id": f"{n:032x}l"},
            "when": {"createdAt": f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z"},
        }
        for n in range(count)
    ]


def read_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the writer's temporary directories appear under a directory the test can inspect."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_each_event_becomes_one_json_line_in_stream_order() -> None:
    events = sample_events(25)
    with write_parts(events) as parts:
        assert [read_lines(part.path) for part in parts] == [events]


def test_gzip_output_is_a_standard_gzip_file_named_jsonl_gz() -> None:
    with write_parts(sample_events(3), compression="gzip") as parts:
        (part,) = parts
        assert part.path.name.endswith(".jsonl.gz")
        with gzip.open(part.path, "rt", encoding="utf-8") as reader:
            assert [json.loads(line) for line in reader] == sample_events(3)


def test_uncompressed_output_is_plain_utf8_json_lines() -> None:
    with write_parts(sample_events(3), compression=None) as parts:
        (part,) = parts
        assert part.path.name.endswith(".jsonl")
        lines = part.path.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == sample_events(3)


def test_lines_are_compact_and_keep_non_ascii_text_unescaped() -> None:
    event = {"where": {"locationName": "Caffè Müller 東京"}, "n": 1}
    with write_parts([event], compression=None) as parts:
        assert parts[0].path.read_bytes() == '{"where":{"locationName":"Caffè Müller 東京"},"n":1}\n'.encode()


def test_parts_hold_at_most_max_events_per_file_in_order() -> None:
    events = sample_events(25)
    with write_parts(events, max_events_per_file=10) as parts:
        assert [part.events for part in parts] == [10, 10, 5]
        assert [part.index for part in parts] == [0, 1, 2]
        assert [e for part in parts for e in read_lines(part.path)] == events


def test_an_exact_multiple_of_max_events_ends_without_an_empty_part() -> None:
    with write_parts(sample_events(20), max_events_per_file=10) as parts:
        assert [part.events for part in parts] == [10, 10]


def test_an_empty_stream_gives_one_empty_gzip_member_that_gzip_readers_open() -> None:
    with write_parts([], compression="gzip") as parts:
        (part,) = parts
        assert part.events == 0
        assert gzip.decompress(part.path.read_bytes()) == b""


def test_an_empty_stream_without_compression_gives_one_empty_file() -> None:
    with write_parts([], compression=None, max_events_per_file=5) as parts:
        assert [(part.events, part.path.read_bytes()) for part in parts] == [(0, b"")]


def test_reported_sizes_are_the_sizes_on_disk() -> None:
    with write_parts(sample_events(500), max_events_per_file=200) as parts:
        assert [part.size_bytes for part in parts] == [part.path.stat().st_size for part in parts]


def test_the_same_events_give_byte_identical_gzip_files() -> None:
    with write_parts(sample_events(50)) as first, write_parts(sample_events(50)) as second:
        assert first[0].path.read_bytes() == second[0].path.read_bytes()


def test_the_temporary_directory_is_removed_when_the_block_ends(private_tmp: Path) -> None:
    with write_parts(sample_events(5), max_events_per_file=2) as parts:
        assert all(part.path.exists() for part in parts)
    assert list(private_tmp.iterdir()) == []


def test_the_temporary_directory_is_removed_when_the_block_fails(private_tmp: Path) -> None:
    with pytest.raises(RuntimeError, match="upload failed"), write_parts(sample_events(5)):
        raise RuntimeError("upload failed")
    assert list(private_tmp.iterdir()) == []


def test_a_stream_failing_midway_propagates_and_leaves_no_files(private_tmp: Path) -> None:
    def failing() -> Iterator[dict[str, Any]]:
        yield from sample_events(30)
        raise ConnectionError("API went away")

    with pytest.raises(ConnectionError, match="API went away"), write_parts(failing(), max_events_per_file=7):
        pytest.fail("the block must not run when the stream fails")
    assert list(private_tmp.iterdir()) == []


def test_an_unserialisable_document_fails_and_leaves_no_files(private_tmp: Path) -> None:
    with pytest.raises(TypeError), write_parts([{"ok": 1}, {"bad": object()}]):
        pytest.fail("the block must not run when serialisation fails")
    assert list(private_tmp.iterdir()) == []


def test_the_gzip_hook_point_takes_a_faster_gzip_compatible_compressor() -> None:
    igzip = pytest.importorskip("isal.igzip")

    def isal_gzip(raw: Any) -> Any:
        return igzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0)

    events = sample_events(100)
    with write_parts(events, gzip_factory=isal_gzip) as fast, write_parts(events) as standard:
        # Different bytes show the plugged-in compressor did the work; a gzip reader still reads it.
        assert fast[0].path.read_bytes() != standard[0].path.read_bytes()
        assert read_lines(fast[0].path) == events


def test_the_gzip_hook_point_is_not_used_without_compression() -> None:
    def refuse(raw: Any) -> Any:
        raise AssertionError("no compressor may be built for compression=None")

    with write_parts(sample_events(3), compression=None, gzip_factory=refuse) as parts:
        assert read_lines(parts[0].path) == sample_events(3)


def test_memory_stays_flat_while_writing_a_large_stream() -> None:
    payload = "x" * 1000

    def many() -> Iterator[dict[str, Any]]:
        for n in range(40_000):  # about 40 MB of JSON
            yield {"id": n, "payload": payload}

    tracemalloc.start()
    try:
        with write_parts(many(), max_events_per_file=15_000) as parts:
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(part.events for part in parts) == 40_000
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("bad", ["zip", "GZIP", "", "none"])
def test_unknown_compression_is_refused_naming_the_choices(bad: str) -> None:
    with pytest.raises(ValueError, match=r'compression must be "gzip" or None'):
        check_compression(bad)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_max_events_per_file_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_events_per_file must be a positive integer"):
        check_max_events_per_file(bad)


def test_write_parts_refuses_bad_settings_before_creating_files(private_tmp: Path) -> None:
    with pytest.raises(ValueError, match="compression"), write_parts(sample_events(1), compression="bz2"):
        pytest.fail("unreachable")
    assert list(private_tmp.iterdir()) == []


def test_media_types_describe_the_stored_bytes() -> None:
    assert (media_type("gzip"), media_type(None)) == ("application/gzip", "application/x-ndjson")


def test_stdlib_gzip_leaves_the_wrapped_file_open(tmp_path: Path) -> None:
    with (tmp_path / "out.gz").open("wb") as raw:
        stream = stdlib_gzip(raw)
        stream.write(b"{}\n")
        stream.close()
        assert not raw.closed
    assert gzip.decompress((tmp_path / "out.gz").read_bytes()) == b"{}\n"


@pytest.mark.parametrize("compression", ["gzip", None])
def test_a_stream_holds_the_same_bytes_as_the_one_part_file_of_the_same_documents(
    compression: str | None,
) -> None:
    documents = [{"event": {"id": str(n), "type": "visit"}, "n": n} for n in range(5_000)]
    sink = io.BytesIO()

    count = write_stream(iter(documents), sink, compression=compression)

    with write_parts(iter(documents), compression=compression) as parts:
        file_bytes = parts[0].path.read_bytes()
    assert count == 5_000
    assert sink.getvalue() == file_bytes
    assert not sink.closed


def lines_of(documents: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in documents]


@pytest.mark.parametrize("compression", ["gzip", None])
def test_blocks_give_the_same_bytes_however_the_lines_are_cut_into_them(compression: str | None) -> None:
    # ~3 MB of lines: several of the 1 MiB chunks the compressor is handed.
    lines = lines_of(sample_events(30_000))
    outputs = []
    for cuts in ([], [1, 7_000, 15_001], list(range(997, len(lines), 997))):
        bounds = [0, *cuts, len(lines)]
        blocks = [b"".join(lines[a:b]) for a, b in itertools.pairwise(bounds)]
        sink = io.BytesIO()
        assert write_blocks(iter(blocks), sink, compression=compression) == len(lines)
        outputs.append(sink.getvalue())
    assert outputs[0] == outputs[1] == outputs[2]
    content = gzip.decompress(outputs[0]) if compression else outputs[0]
    assert content == b"".join(lines)


def test_no_blocks_give_one_empty_gzip_member() -> None:
    sink = io.BytesIO()
    assert write_blocks(iter([]), sink) == 0
    assert gzip.decompress(sink.getvalue()) == b""
