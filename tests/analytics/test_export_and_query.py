"""End to end: export hours of simulated events by event type to S3 (moto), then query them with DuckDB.

Three consecutive hourly windows, across midnight UTC, go through ``Cloud4WiEventsToS3Operator``
with ``partition_by="event_type"`` as JSON Lines, as Parquet, and as Parquet split into parts,
each into a bucket of its own (the formats share their default names, so one bucket would make
each export replace the other). The buckets are copied to local trees mirroring their keys, and
the shipped DuckDB view reads each tree over its Hive levels; the rows must be the simulator's own
events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from storage_servers import AWS_REGION, moto_client

from airflow_provider_cloud4wi import schemas
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

UTC = dt.timezone.utc
FIRST_HOUR = dt.datetime(2024, 1, 1, 22, tzinfo=UTC)
HOURS = 3
WINDOWS = [(FIRST_HOUR + dt.timedelta(hours=n), FIRST_HOUR + dt.timedelta(hours=n + 1)) for n in range(HOURS)]
FAST_RETRIES = {"retry_wait_initial": 0.01, "retry_wait_max": 0.05, "retry_after_cap": 0.05}
EXTENSIONS = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}
#: name -> operator settings; each lands in a bucket of its own.
LAYOUTS: dict[str, dict[str, Any]] = {
    "jsonl": {"file_format": "jsonl"},
    "parquet": {"file_format": "parquet"},
    "parquet-split": {"file_format": "parquet", "max_events_per_file": 20},
}
_STAMP = "%Y%m%dT%H%M%SZ"
_RUN = r"[0-9a-f]{8}-[0-9a-f]{6}"


@dataclass
class Landed:
    """One layout's export: the bucket's keys, the operators' results and the local copy."""

    file_format: str
    split: bool
    root: Path
    keys: list[str]
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def data_keys(self) -> list[str]:
        return [key for key in self.keys if key.endswith(EXTENSIONS[self.file_format])]

    def manifest(self, window: tuple[dt.datetime, dt.datetime], organization_id: str) -> dict[str, Any]:
        path = self.root / f"{window_stem(window, organization_id)}.manifest.json"
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document


@dataclass
class Export:
    """Every layout's landing, and the simulator's own events of each window."""

    organization_id: str
    expected: dict[tuple[dt.datetime, dt.datetime], list[dict[str, Any]]]
    layouts: dict[str, Landed]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for window in WINDOWS for event in self.expected[window]]


def window_stem(window: tuple[dt.datetime, dt.datetime], organization_id: str) -> str:
    """The default key of a window without its extension (spelled out here, not computed)."""
    start, end = window
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start:%Y-%m-%d}/"
        f"events_{start.strftime(_STAMP)}_{end.strftime(_STAMP)}"
    )


def download(client: Any, bucket: str, root: Path) -> list[str]:
    """Copy every object of ``bucket`` to ``root``/<key>; return the keys, sorted."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            keys.append(key)
    return sorted(keys)


@pytest.fixture(scope="module")
def export(moto_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Export]:
    """Run the three windows for every layout once for the module, against real HTTP servers."""
    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

    client = moto_client(moto_server)
    with pytest.MonkeyPatch.context() as env, Cloud4WiSimulator() as sim:
        config = sim.config
        cloud4wi = {
            "conn_type": "cloud4wi",
            "host": sim.url,
            "login": config.client_key,
            "password": config.client_secret,
            "extra": {"organization_id": config.organization_id},
        }
        aws = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": moto_server.url, "region_name": AWS_REGION},
        }
        env.setenv("AIRFLOW_CONN_CLOUD4WI_DEFAULT", json.dumps(cloud4wi))
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))
        layouts: dict[str, Landed] = {}
        for name, settings in LAYOUTS.items():
            bucket = f"cloud4wi-e2e-{uuid.uuid4().hex[:12]}"
            client.create_bucket(Bucket=bucket)
            results = []
            for start, end in WINDOWS:
                operator = Cloud4WiEventsToS3Operator(
                    task_id="export",
                    s3_bucket=bucket,
                    window_start=start,
                    window_end=end,
                    partition_by="event_type",
                    hook_params=FAST_RETRIES,
                    **settings,
                )
                results.append(operator.execute(context={}))  # type: ignore[arg-type]
            root = tmp_path_factory.mktemp(name)
            layouts[name] = Landed(
                settings["file_format"],
                "max_events_per_file" in settings,
                root,
                download(client, bucket, root),
            )
            layouts[name].results = results
        expected = {window: list(sim.expected_events(*window)) for window in WINDOWS}
        yield Export(config.organization_id, expected, layouts)


def connect(landed: Landed) -> Any:
    """A DuckDB session with the shipped view over the landed tree, in a zone that is not UTC."""
    connection = duckdb.connect()
    # Not a whole-hour offset: a query that truncated in the session's zone would miscount hours.
    connection.execute("SET TimeZone = 'Asia/Kolkata'")
    # Data files only: the manifests sit beside them, under the same prefix.
    glob = f"{landed.root}/cloud4wi/events/**/*{EXTENSIONS[landed.file_format]}"
    connection.execute("SET VARIABLE cloud4wi_events_glob = ?", [glob])
    connection.execute(schemas.read_text(f"duckdb_view_{landed.file_format}.sql"))
    return connection


def created_at(event: dict[str, Any]) -> dt.datetime:
    """An event's ``createdAt`` as a naive UTC datetime."""
    return dt.datetime.fromisoformat(event["when"]["createdAt"].replace("Z", "+00:00")).replace(tzinfo=None)


EACH_LAYOUT = pytest.mark.parametrize("layout", sorted(LAYOUTS))


def test_the_simulated_hours_hold_several_event_types(export: Export) -> None:
    # Guards the other tests against passing on a dataset too small to partition.
    for window in WINDOWS:
        assert len({event["event"]["type"] for event in export.expected[window]}) >= 5


def object_name(
    landed: Landed, window: tuple[dt.datetime, dt.datetime], organization_id: str
) -> re.Pattern[str]:
    """The spec's name of a data object of a window partitioned by type: type and run as groups."""
    directory, _, base = window_stem(window, organization_id).rpartition("/")
    part = r"\.part-\d{5}" if landed.split else ""
    extension = re.escape(EXTENSIONS[landed.file_format])
    return re.compile(
        rf"{re.escape(directory)}/event_type=(?P<type>[a-z0-9_]+)/{re.escape(base)}\.(?P<run>{_RUN}){part}{extension}"
    )


@EACH_LAYOUT
def test_each_window_lands_one_object_per_type_under_an_event_type_level_named_for_its_run(
    export: Export, layout: str
) -> None:
    landed = export.layouts[layout]
    for window in WINDOWS:
        name = object_name(landed, window, export.organization_id)
        matches = [m for key in landed.data_keys if (m := name.fullmatch(key))]
        assert {m["type"] for m in matches} == {event["event"]["type"] for event in export.expected[window]}
        assert len({m["run"] for m in matches}) == 1  # one run wrote every object of the window
        assert f"{window_stem(window, export.organization_id)}.manifest.json" in landed.keys
    # Nothing but the windows' data objects and one manifest each.
    named = [
        key
        for window in WINDOWS
        for key in landed.data_keys
        if object_name(landed, window, export.organization_id).fullmatch(key)
    ]
    assert sorted(named) == landed.data_keys
    assert len(landed.keys) == len(landed.data_keys) + len(WINDOWS)


@EACH_LAYOUT
def test_each_manifest_lists_exactly_the_objects_of_its_window_with_their_types_and_counts(
    export: Export, layout: str
) -> None:
    landed = export.layouts[layout]
    for window, result in zip(WINDOWS, landed.results, strict=True):
        manifest = landed.manifest(window, export.organization_id)
        expected = export.expected[window]
        assert (manifest["format"], manifest["partition_by"]) == ("cloud4wi-export-manifest", "event_type")
        assert manifest["file_format"] == landed.file_format
        assert manifest["event_count"] == result["event_count"] == len(expected)
        name = object_name(landed, window, export.organization_id)
        listed = manifest["objects"]
        assert sorted(o["key"] for o in listed) == [key for key in landed.data_keys if name.fullmatch(key)]
        per_type: Counter[str] = Counter()
        for listed_object in listed:
            assert name.fullmatch(listed_object["key"])["type"] == listed_object["event_type"]  # type: ignore[index]
            per_type[listed_object["event_type"]] += listed_object["events"]
        assert per_type == Counter(event["event"]["type"] for event in expected)
        assert result["manifest"].endswith(f"{window_stem(window, export.organization_id)}.manifest.json")


@EACH_LAYOUT
def test_events_per_type_per_hour_equal_the_simulators(export: Export, layout: str) -> None:
    connection = connect(export.layouts[layout])
    rows = connection.execute(
        schemas.named_queries("duckdb_queries.sql")["events_per_type_per_hour"]
    ).fetchall()
    counts = Counter(
        (e["event"]["type"], created_at(e).replace(minute=0, second=0, microsecond=0)) for e in export.events
    )
    assert rows == sorted(((t, h, n) for (t, h), n in counts.items()), key=lambda row: (row[1], row[0]))


@EACH_LAYOUT
def test_the_hive_levels_are_columns_that_agree_with_each_row(export: Export, layout: str) -> None:
    connection = connect(export.layouts[layout])
    mismatched = connection.execute(
        "SELECT count(*) FROM cloud4wi_events WHERE event_type IS DISTINCT FROM event.type "
        "OR organization_id IS DISTINCT FROM ? "
        'OR "date" IS DISTINCT FROM CAST("when".createdAt AT TIME ZONE \'UTC\' AS DATE)',
        [export.organization_id],
    ).fetchone()
    assert mismatched == (0,)
    days = connection.execute(
        'SELECT "date", count(*) FROM cloud4wi_events GROUP BY ALL ORDER BY ALL'
    ).fetchall()
    assert days == sorted(Counter(created_at(e).date() for e in export.events).items())


@EACH_LAYOUT
def test_the_typed_fields_of_every_row_are_the_simulators_values(export: Export, layout: str) -> None:
    connection = connect(export.layouts[layout])
    rows = connection.execute(
        "SELECT event.id, event.type, customerId, organizationId, \"when\".createdAt AT TIME ZONE 'UTC', "
        '"when".timezone, "where".locationId, "where".locationName, event.visit.duration FROM cloud4wi_events'
    ).fetchall()
    expected = [
        (
            e["event"]["id"],
            e["event"]["type"],
            e["customerId"],
            e.get("organizationId"),
            created_at(e),
            e["when"]["timezone"],
            e["where"].get("locationId"),
            e["where"].get("locationName"),
            (e["event"].get("visit") or {}).get("duration"),
        )
        for e in export.events
    ]
    assert Counter(rows) == Counter(expected)


@pytest.mark.parametrize("layout", ["parquet", "parquet-split"])
def test_raw_gives_back_every_simulated_event_exactly(export: Export, layout: str) -> None:
    connection = connect(export.layouts[layout])
    raw = [json.loads(text) for (text,) in connection.execute("SELECT raw FROM cloud4wi_events").fetchall()]
    by_id = {event["event"]["id"]: event for event in export.events}
    assert len(raw) == len(by_id) == len(export.events)
    assert {event["event"]["id"]: event for event in raw} == by_id


def test_json_lines_and_parquet_agree_row_for_row(export: Export) -> None:
    query = (
        'SELECT event.id, event.type, customerId, organizationId, "when".createdAt, "when".createdAtLocal, '
        '"where".locationName, "where".geofenceJSON.radius, event.visit.duration, '
        "event.visit.properties.appOs, "
        "event.signup.source, event.email.subject, event.survey.score, event.promo.promoName, "
        '"date", event_type FROM cloud4wi_events ORDER BY event.id'
    )
    jsonl, parquet, split = (
        connect(export.layouts[name]).execute(query).fetchall() for name in sorted(LAYOUTS)
    )
    assert len(jsonl) == len(export.events)
    assert jsonl == parquet == split
