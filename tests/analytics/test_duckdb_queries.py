"""The shipped DuckDB view and queries, run by DuckDB over landed JSON Lines and Parquet trees."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_cloud4wi import schemas
from airflow_provider_cloud4wi.parquet import write_parquet_parts
from airflow_provider_cloud4wi.schemas.model import KEY_PREFIX
from airflow_provider_cloud4wi.testing.simulator import DEFAULT_ORGANIZATION_ID
from airflow_provider_cloud4wi.writer import write_parts

FORMATS = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}
_KEY_TIME = "%Y%m%dT%H%M%SZ"


def created_at(line: bytes) -> dt.datetime:
    text = json.loads(line)["when"]["createdAt"]
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_one(lines: list[bytes], file_format: str, destination: Path) -> None:
    """Land ``lines`` at ``destination`` through the writer the transfer uses for that format."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    writer = write_parts(lines, compression="gzip") if file_format == "jsonl" else write_parquet_parts(lines)
    with writer as parts:
        assert len(parts) == 1
        shutil.copyfile(parts[0].path, destination)


def land(lines: list[bytes], root: Path, file_format: str, *, by_event_type: bool) -> None:
    """One object per UTC hour (and per event type), at the transfers' Hive-style keys."""
    groups: dict[tuple[dt.datetime, str], list[bytes]] = defaultdict(list)
    for line in lines:
        hour = created_at(line).replace(minute=0, second=0, microsecond=0)
        groups[(hour, json.loads(line)["event"]["type"] if by_event_type else "")].append(line)
    for (hour, event_type), members in groups.items():
        end = hour + dt.timedelta(hours=1)
        level = f"event_type={event_type}/" if by_event_type else ""
        key = (
            f"{KEY_PREFIX}/organization_id={DEFAULT_ORGANIZATION_ID}/date={hour:%Y-%m-%d}/{level}"
            f"events_{hour.strftime(_KEY_TIME)}_{end.strftime(_KEY_TIME)}{FORMATS[file_format]}"
        )
        write_one(members, file_format, root / key)


def connect(root: Path, file_format: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB session with the shipped view over ``root``, in a time zone that is not UTC."""
    connection = duckdb.connect()
    # Not a whole-hour offset: a query that truncated in the session's zone would miscount hours.
    connection.execute("SET TimeZone = 'Asia/Kolkata'")
    connection.execute(
        "SET VARIABLE cloud4wi_events_glob = ?", [f"{root}/{KEY_PREFIX}/**/*{FORMATS[file_format]}"]
    )
    connection.execute(schemas.read_text(f"duckdb_view_{file_format}.sql"))
    return connection


def run(connection: duckdb.DuckDBPyConnection, name: str) -> list[tuple[Any, ...]]:
    return connection.execute(schemas.named_queries("duckdb_queries.sql")[name]).fetchall()


def expected_per_type_per_hour(lines: list[bytes]) -> list[tuple[str, dt.datetime, int]]:
    counts = Counter(
        (json.loads(line)["event"]["type"], created_at(line).replace(minute=0, second=0, tzinfo=None))
        for line in lines
    )
    return sorted(((t, h, n) for (t, h), n in counts.items()), key=lambda row: (row[1], row[0]))


def expected_visits_per_location(lines: list[bytes]) -> list[tuple[str, str, int, float]]:
    durations: dict[tuple[str, str], list[int]] = defaultdict(list)
    for document in map(json.loads, lines):
        if document["event"]["type"] == "visit":
            where = document["where"]
            durations[(where["locationId"], where["locationName"])].append(
                document["event"]["visit"]["duration"]
            )
    rows = [(lid, name, len(d), sum(d) / len(d)) for (lid, name), d in durations.items()]
    return sorted(rows, key=lambda row: (-row[2], row[0]))


@pytest.fixture(scope="module")
def landed_lines(simulated_lines: list[bytes], docs_event_lines: list[bytes]) -> list[bytes]:
    """Four simulated hours across midnight, and the docs' sample events (2022, geo events too)."""
    return simulated_lines + docs_event_lines


@pytest.fixture(scope="module")
def landed(
    tmp_path_factory: pytest.TempPathFactory, landed_lines: list[bytes]
) -> Callable[[str, bool], Path]:
    """The root of a landed tree per (format, by_event_type), written once per module."""
    roots: dict[tuple[str, bool], Path] = {}

    def root(file_format: str, by_event_type: bool) -> Path:
        if (file_format, by_event_type) not in roots:
            path = tmp_path_factory.mktemp(f"{file_format}-{'by-type' if by_event_type else 'default'}")
            land(landed_lines, path, file_format, by_event_type=by_event_type)
            roots[(file_format, by_event_type)] = path
        return roots[(file_format, by_event_type)]

    return root


LAYOUTS = pytest.mark.parametrize(
    ("file_format", "by_event_type"),
    [("jsonl", False), ("parquet", False), ("jsonl", True), ("parquet", True)],
)


@LAYOUTS
def test_events_per_type_per_hour_equal_the_counts_of_the_input(
    landed: Callable[[str, bool], Path], landed_lines: list[bytes], file_format: str, by_event_type: bool
) -> None:
    rows = run(connect(landed(file_format, by_event_type), file_format), "events_per_type_per_hour")
    assert rows == expected_per_type_per_hour(landed_lines)


@LAYOUTS
def test_visits_per_location_equal_the_counts_and_durations_of_the_input(
    landed: Callable[[str, bool], Path], landed_lines: list[bytes], file_format: str, by_event_type: bool
) -> None:
    rows = run(connect(landed(file_format, by_event_type), file_format), "visits_per_location")
    expected = expected_visits_per_location(landed_lines)
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    assert [row[3] for row in rows] == pytest.approx([row[3] for row in expected])


@LAYOUTS
def test_the_hive_levels_are_columns_with_date_as_a_date(
    landed: Callable[[str, bool], Path], landed_lines: list[bytes], file_format: str, by_event_type: bool
) -> None:
    connection = connect(landed(file_format, by_event_type), file_format)
    rows = connection.execute(
        'SELECT organization_id, "date", count(*) FROM cloud4wi_events GROUP BY ALL ORDER BY ALL'
    ).fetchall()
    dates = Counter(created_at(line).date() for line in landed_lines)
    assert rows == [(DEFAULT_ORGANIZATION_ID, day, n) for day, n in sorted(dates.items())]
    if by_event_type:
        mismatched = connection.execute(
            "SELECT count(*) FROM cloud4wi_events WHERE event_type IS DISTINCT FROM event.type"
        ).fetchone()
        assert mismatched == (0,)


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_duckdb_reads_created_at_as_a_timestamp_with_time_zone(
    landed: Callable[[str, bool], Path], file_format: str
) -> None:
    connection = connect(landed(file_format, False), file_format)
    types = dict(
        connection.execute("SELECT column_name, column_type FROM (DESCRIBE cloud4wi_events)").fetchall()
    )
    assert types["when"].startswith("STRUCT(createdAt TIMESTAMP WITH TIME ZONE, createdAtLocal TIMESTAMP,")
    assert types["date"] == "DATE"
    first = connection.execute(
        'SELECT "when".createdAt AT TIME ZONE \'UTC\', "when".createdAtLocal FROM cloud4wi_events '
        "WHERE event.id = 'de8a7434d907e640cf1e80c347a420bel'"
    ).fetchone()
    assert first == (dt.datetime(2022, 7, 21, 18, 56, 23), dt.datetime(2022, 7, 21, 11, 56, 23))


def test_json_lines_and_parquet_agree_row_for_row(landed: Callable[[str, bool], Path]) -> None:
    query = (
        'SELECT event.id, event.type, customerId, organizationId, "when".createdAt, "when".createdAtLocal, '
        '"where".locationName, "where".geofenceJSON.radius, event.visit.duration, '
        "event.visit.properties.appOs, "
        "event.signup.source, event.email.subject, event.survey.score, event.promo.promoName "
        "FROM cloud4wi_events ORDER BY event.id"
    )
    jsonl = connect(landed("jsonl", True), "jsonl").execute(query).fetchall()
    parquet = connect(landed("parquet", False), "parquet").execute(query).fetchall()
    assert jsonl == parquet
    # The undocumented objects are typed too (the simulator's shape).
    assert any(row[11] is not None for row in parquet)
    assert any(row[12] is not None for row in parquet)


def test_raw_gives_back_every_event_exactly_as_sent(
    landed: Callable[[str, bool], Path], landed_lines: list[bytes]
) -> None:
    connection = connect(landed("parquet", True), "parquet")
    raw = dict(connection.execute("SELECT event.id, raw FROM cloud4wi_events").fetchall())
    assert raw == {json.loads(line)["event"]["id"]: line.decode("utf-8") for line in landed_lines}
    assert len(raw) == len(landed_lines)


def test_the_json_lines_objects_are_plain_gzip_of_the_input(
    landed: Callable[[str, bool], Path], landed_lines: list[bytes]
) -> None:
    root = landed("jsonl", False)
    found = [gzip.decompress(p.read_bytes()).splitlines() for p in sorted(root.rglob("*.jsonl.gz"))]
    assert sorted(line for lines in found for line in lines) == sorted(landed_lines)
