"""Tests of the Parquet part writer: one typed row per event, raw kept exactly, parts, determinism."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_cloud4wi import parquet
from airflow_provider_cloud4wi.parquet import (
    FILE_EXTENSION,
    arrow_schema,
    check_parquet_available,
    check_parquet_compression,
    events_table,
    write_parquet_parts,
)

UTC = dt.timezone.utc


def read_rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def written(lines: Sequence[bytes | Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    with write_parquet_parts(lines, **kwargs) as parts:
        return read_rows([part.path for part in parts])


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def wall_clock(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", ""))


def test_each_event_is_one_row_in_input_order_with_its_exact_text_in_raw(
    simulated_lines: list[bytes],
) -> None:
    rows = written(simulated_lines)
    assert [row["raw"].encode("utf-8") for row in rows] == simulated_lines


def test_the_typed_columns_hold_the_documented_members_of_the_docs_example(
    docs_events: list[dict[str, Any]], docs_event_lines: list[bytes]
) -> None:
    rows = written(docs_event_lines)
    for event, row in zip(docs_events, rows, strict=True):
        assert row["customerId"] == event["customerId"]
        assert row["organizationId"] == event.get("organizationId")
        assert row["event"]["type"] == event["event"]["type"]
        assert row["event"]["id"] == event["event"]["id"]
        assert row["when"]["createdAt"] == utc(event["when"]["createdAt"])
        assert row["when"]["createdAtLocal"] == wall_clock(event["when"]["createdAtLocal"])
        assert row["when"]["timezone"] == event["when"]["timezone"]
        assert row["where"]["locationName"] == event["where"].get("locationName")
        visit = event["event"].get("visit")
        if visit is None:
            assert row["event"]["visit"] is None
        else:
            assert row["event"]["visit"]["startAt"] == utc(visit["startAt"])
            assert row["event"]["visit"]["duration"] == visit.get("duration")
            assert row["event"]["visit"]["properties"] == visit.get("properties")
        geofence = event["where"].get("geofenceJSON")
        if geofence is not None:
            assert row["where"]["geofenceJSON"] == geofence | {"radius": float(geofence["radius"])}
        signup = event["event"].get("signup")
        assert row["event"]["signup"] == signup


def test_the_file_schema_types_created_at_as_a_utc_timestamp_and_ends_with_raw(
    docs_event_lines: list[bytes],
) -> None:
    with write_parquet_parts(docs_event_lines) as parts:
        schema = pq.read_schema(parts[0].path)
    when = schema.field("when").type
    assert when.field("createdAt").type == pa.timestamp("us", tz="UTC")
    assert when.field("createdAtLocal").type == pa.timestamp("us")
    assert schema.names == ["customerId", "organizationId", "event", "where", "when", "raw"]
    assert [f.name for f in schema.field("event").type] == [
        "type", "id", "visit", "signup", "email", "sms", "survey", "promo",
    ]  # fmt: skip
    assert schema.remove_metadata() == arrow_schema()


def _mutated(docs_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    visit = json.loads(json.dumps(docs_events[5]))
    unknown_type = json.loads(json.dumps(docs_events[1]))
    unknown_type["event"] = {"type": "teleport", "id": "t1", "teleport": {"to": "mars"}}
    unknown_type["brandNew"] = {"nested": [1, {"x": None}]}
    wrong_duration = json.loads(json.dumps(visit))
    wrong_duration["event"]["visit"]["duration"] = "15"
    wrong_where = json.loads(json.dumps(visit))
    wrong_where["where"] = "Ivan Home"
    bad_instant = json.loads(json.dumps(visit))
    bad_instant["when"]["createdAt"] = "yesterday"
    return [visit, unknown_type, wrong_duration, wrong_where, bad_instant]


def test_unknown_members_types_and_mistyped_values_never_fail_and_only_the_misfit_is_null(
    docs_events: list[dict[str, Any]],
) -> None:
    documents = _mutated(docs_events)
    lines = [json.dumps(d, separators=(",", ":")).encode() for d in documents]
    lines += [b"[1,2,3]", b'{"not json', b'{"customerId":"x"}{"customerId":"y"}', b""]
    rows = written(lines)
    assert [row["raw"].encode() for row in rows] == lines
    visit, unknown_type, wrong_duration, wrong_where, bad_instant, array, broken, two, empty = rows
    assert visit["event"]["visit"]["duration"] == 15
    assert unknown_type["event"]["type"] == "teleport"
    assert unknown_type["event"]["visit"] is None
    assert wrong_duration["event"]["visit"]["duration"] is None
    assert wrong_duration["event"]["visit"]["startAt"] == utc("2022-07-21T18:41:09Z")
    assert wrong_where["where"] is None
    assert wrong_where["event"]["id"] == visit["event"]["id"]
    assert bad_instant["when"]["createdAt"] is None
    assert bad_instant["when"]["timezone"] == "America/Los_Angeles"
    assert {key: value for key, value in array.items() if key != "raw"} == dict.fromkeys(
        ["customerId", "organizationId", "event", "where", "when"]
    )
    assert broken["customerId"] is None
    assert two["customerId"] is None
    assert empty["customerId"] is None


def test_a_batch_arrow_refuses_is_typed_event_by_event_to_the_same_values(
    simulated_lines: list[bytes], docs_event_lines: list[bytes]
) -> None:
    lines = simulated_lines[:3000] + docs_event_lines
    fast = events_table(lines)
    slow = events_table([*lines, b'{"customerId":1}']).slice(0, len(lines))
    assert fast.equals(slow)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-07-21T18:41:09Z", dt.datetime(2022, 7, 21, 18, 41, 9, tzinfo=UTC)),
        ("2022-07-21T20:41:09.5+02:00", dt.datetime(2022, 7, 21, 18, 41, 9, 500000, tzinfo=UTC)),
        ("2022-07-21T18:41:09", dt.datetime(2022, 7, 21, 18, 41, 9, tzinfo=UTC)),
        ("2022-07-21T20:41:09+0200", dt.datetime(2022, 7, 21, 18, 41, 9, tzinfo=UTC)),
        ("2022-07-21T16:41:09-02", dt.datetime(2022, 7, 21, 18, 41, 9, tzinfo=UTC)),
        ("2022-07-21T18", dt.datetime(2022, 7, 21, 18, tzinfo=UTC)),
        ("2022-07-21", dt.datetime(2022, 7, 21, tzinfo=UTC)),
        (" 2022-07-21T18:41:09Z", None),
        ("2022-07-21T18:41:09.1234567Z", None),
        ("2022-02-30T00:00:00Z", None),
        (1658428869, None),
    ],
)
def test_instants_are_read_the_same_whichever_way_the_batch_is_typed(text: Any, expected: Any) -> None:
    line = json.dumps({"customerId": "c", "when": {"createdAt": text}}).encode()
    fast = events_table([line]).to_pylist()[0]["when"]["createdAt"]
    slow = events_table([line, b"0"]).to_pylist()[0]["when"]["createdAt"]
    assert slow == expected
    assert fast == expected


def test_the_same_events_always_give_the_same_bytes(simulated_lines: list[bytes]) -> None:
    def once() -> list[bytes]:
        with write_parquet_parts(
            iter(simulated_lines), max_events_per_file=5_000, row_group_events=2_000
        ) as parts:
            return [part.path.read_bytes() for part in parts]

    assert once() == once()


def test_row_groups_follow_row_group_events_and_parts_follow_max_events_per_file(
    docs_event_lines: list[bytes],
) -> None:
    lines = docs_event_lines * 3  # 57 events
    with write_parquet_parts(lines, max_events_per_file=25, row_group_events=10) as parts:
        assert [part.events for part in parts] == [25, 25, 7]
        assert [part.path.name for part in parts] == [f"part-{n:05d}{FILE_EXTENSION}" for n in range(3)]
        assert [pq.ParquetFile(part.path).metadata.num_row_groups for part in parts] == [3, 3, 1]
        assert all(part.size_bytes == part.path.stat().st_size for part in parts)
        assert [row["raw"].encode() for row in read_rows([p.path for p in parts])] == lines


def test_an_exact_multiple_of_max_events_per_file_ends_without_an_empty_part(
    docs_event_lines: list[bytes],
) -> None:
    with write_parquet_parts(docs_event_lines[:18], max_events_per_file=9) as parts:
        assert [part.events for part in parts] == [9, 9]


def test_an_empty_stream_gives_one_valid_file_with_the_schema_and_no_rows() -> None:
    with write_parquet_parts([]) as parts:
        assert len(parts) == 1
        assert parts[0].events == 0
        table = pq.read_table(parts[0].path)
    assert table.num_rows == 0
    assert table.schema.remove_metadata() == arrow_schema()


def test_mappings_are_serialised_and_landed_like_lines(docs_events: list[dict[str, Any]]) -> None:
    rows = written(docs_events[:3])
    assert [json.loads(row["raw"]) for row in rows] == docs_events[:3]


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", None])
def test_every_accepted_codec_writes_a_readable_file(
    compression: str | None, docs_event_lines: list[bytes]
) -> None:
    assert len(written(docs_event_lines, compression=compression)) == len(docs_event_lines)


@pytest.mark.parametrize("compression", ["lz4", "GZIP", ""])
def test_an_unknown_codec_is_refused(compression: str) -> None:
    with pytest.raises(ValueError, match="compression for Parquet"):
        check_parquet_compression(compression)


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_a_row_group_size_that_is_not_a_positive_integer_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="row_group_events"), write_parquet_parts([], row_group_events=value):
        pass


def test_the_temporary_directory_is_removed_after_the_block(
    docs_event_lines: list[bytes], tmp_path: Path
) -> None:
    with write_parquet_parts(docs_event_lines, temp_dir=tmp_path) as parts:
        assert parts[0].path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_stream_propagates_and_leaves_no_temporary_files(
    docs_event_lines: list[bytes], tmp_path: Path
) -> None:
    def failing() -> Iterator[bytes]:
        yield from docs_event_lines * 2
        raise ConnectionError("the API went away")

    with (
        pytest.raises(ConnectionError, match="went away"),
        write_parquet_parts(failing(), row_group_events=5, max_events_per_file=12, temp_dir=tmp_path),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_without_pyarrow_the_error_names_the_parquet_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"airflow-provider-cloud4wi\[parquet\]"):
        check_parquet_available()
    with pytest.raises(ImportError, match="parquet extra"), write_parquet_parts([]):
        pass


def test_importing_the_module_does_not_import_pyarrow() -> None:
    import subprocess

    code = (
        "import sys, airflow_provider_cloud4wi.parquet, airflow_provider_cloud4wi.schemas; "
        "print('pyarrow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
    assert parquet.MEDIA_TYPE == "application/vnd.apache.parquet"
