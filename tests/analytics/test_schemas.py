"""Tests of the shipped table definitions: generated from one description, true to the public docs."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
import pytest

from airflow_provider_cloud4wi import schemas
from airflow_provider_cloud4wi.schemas.model import (
    EVENT_FIELDS,
    KEY_PREFIX,
    KNOWN_EVENT_TYPES,
    PARTITIONS,
    PARTITIONS_BY_EVENT_TYPE,
    Kind,
    iter_leaves,
)
from airflow_provider_cloud4wi.schemas.render import render_all


def leaf_paths(document: Any, prefix: str = "") -> Iterator[str]:
    """The dotted paths of a document's members that are not objects (a list is a leaf)."""
    for name, value in document.items():
        if isinstance(value, dict):
            yield from leaf_paths(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def bigquery_paths(fields: list[Any], prefix: str = "") -> Iterator[str]:
    for field in fields:
        if field.field_type == "RECORD":
            yield from bigquery_paths(list(field.fields), f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = schemas.event_json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def shipped_names() -> set[str]:
    directory = resources.files(schemas.__name__)
    return {p.name for p in directory.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc"))}


def test_the_shipped_files_are_exactly_what_the_description_renders_now() -> None:
    rendered = render_all()
    assert shipped_names() == set(rendered), "run: python -m airflow_provider_cloud4wi.schemas"
    for name, text in rendered.items():
        assert schemas.read_text(name) == text, (
            f"{name} is stale: run python -m airflow_provider_cloud4wi.schemas"
        )


def test_every_sample_event_of_the_public_docs_validates(validator: Any, docs_events: list[Any]) -> None:
    for event in docs_events:
        validator.validate(event)


def test_every_simulated_event_validates(validator: Any, simulated_lines: list[bytes]) -> None:
    for line in simulated_lines[::7]:
        validator.validate(json.loads(line))


def test_members_and_types_the_api_may_add_still_validate(validator: Any, docs_events: list[Any]) -> None:
    event = json.loads(json.dumps(docs_events[5]))
    event["event"]["type"] = "teleport"
    event["event"]["teleport"] = {"to": "mars"}
    event["newTopLevel"] = [1, 2]
    validator.validate(event)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("when", "createdAt"), None),
        (("when", "createdAt"), "yesterday"),
        (("event", "id"), None),
        (("event", "visit", "duration"), "15"),
    ],
)
def test_an_event_without_its_required_members_or_with_mistyped_ones_is_invalid(
    validator: Any, docs_events: list[Any], path: tuple[str, ...], value: Any
) -> None:
    event = json.loads(json.dumps(docs_events[5]))
    parent = event
    for name in path[:-1]:
        parent = parent[name]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert not validator.is_valid(event)


def test_the_description_covers_every_member_of_the_docs_example_and_claims_no_more(
    docs_events: list[Any],
) -> None:
    in_docs = {path for event in docs_events for path in leaf_paths(event)}
    described = dict(iter_leaves())
    assert in_docs <= set(described)
    documented = {path for path, field in described.items() if field.documented}
    # Fields marked documented are those the docs show: the others are the simulator's shape.
    assert documented == in_docs


@pytest.mark.parametrize("layout", ["jsonl", "parquet"])
def test_the_bigquery_schemas_load_and_cover_every_documented_member(
    layout: schemas.Layout, docs_events: list[Any]
) -> None:
    SchemaField = pytest.importorskip("google.cloud.bigquery").SchemaField
    fields = [SchemaField.from_api_repr(field) for field in schemas.bigquery_schema(layout)]
    paths = set(bigquery_paths(fields))
    expected = {path for path, _ in iter_leaves()}
    if layout == "parquet":
        # A member of unknown shape (geofenceMetadata) has no typed column: it is read from raw.
        expected = {path for path, field in iter_leaves() if field.kind is not Kind.JSON} | {"raw"}
    assert paths == expected
    assert {path for event in docs_events for path in leaf_paths(event)} - paths <= {
        path for path, field in iter_leaves() if field.kind is Kind.JSON
    }


def test_bigquery_types_utc_instants_as_timestamps_and_local_times_by_layout() -> None:
    SchemaField = pytest.importorskip("google.cloud.bigquery").SchemaField

    def when(layout: schemas.Layout) -> dict[str, str]:
        record = next(
            SchemaField.from_api_repr(f) for f in schemas.bigquery_schema(layout) if f["name"] == "when"
        )
        return {field.name: field.field_type for field in record.fields}

    assert when("jsonl") == {"createdAt": "TIMESTAMP", "createdAtLocal": "STRING", "timezone": "STRING"}
    assert when("parquet") == {"createdAt": "TIMESTAMP", "createdAtLocal": "DATETIME", "timezone": "STRING"}


def test_the_athena_tables_project_the_transfers_default_key_layout() -> None:
    from airflow_provider_cloud4wi.transfers.base import default_key
    from airflow_provider_cloud4wi.windows import Window

    window = Window.parse(dt.datetime(2024, 5, 1, 2, tzinfo=dt.timezone.utc), "2024-05-01T03:00:00Z")
    key = default_key("abc123", window, "gzip")
    assert key.startswith(f"{KEY_PREFIX}/organization_id=abc123/date=2024-05-01/")
    for name in ("athena_jsonl.sql", "athena_parquet.sql"):
        ddl = schemas.read_text(name)
        template = re.search(r"'storage.location.template' = 's3://my-bucket/(.*)'", ddl)
        assert template is not None
        assert template.group(1) == f"{KEY_PREFIX}/organization_id=${{organization_id}}/date=${{date}}/"
        assert "PARTITIONED BY (" + ", ".join(f"`{p}` string" for p in PARTITIONS) + ")" in ddl


def test_the_by_event_type_tables_add_the_event_type_level_inside_the_date() -> None:
    for name in ("athena_jsonl_by_event_type.sql", "athena_parquet_by_event_type.sql"):
        ddl = schemas.read_text(name)
        levels = "/".join(f"{p}=${{{p}}}" for p in PARTITIONS_BY_EVENT_TYPE)
        assert f"'s3://my-bucket/{KEY_PREFIX}/{levels}/'" in ddl
        assert "'projection.event_type.type' = 'enum'" in ddl


def test_the_by_event_type_tables_project_every_known_type_and_the_unknown_group() -> None:
    from airflow_provider_cloud4wi.export_files import UNKNOWN_EVENT_TYPE

    for name in ("athena_jsonl_by_event_type.sql", "athena_parquet_by_event_type.sql"):
        values = re.search(r"'projection.event_type.values' = '([^']*)'", schemas.read_text(name))
        assert values is not None
        assert values.group(1).split(",") == [*KNOWN_EVENT_TYPES, UNKNOWN_EVENT_TYPE]


def test_the_athena_ddl_types_every_top_level_member_and_parquet_adds_raw() -> None:
    top = [field.name for field in EVENT_FIELDS]
    jsonl = re.findall(r"^  `(\w+)` ", schemas.read_text("athena_jsonl.sql"), re.MULTILINE)
    parquet = re.findall(r"^  `(\w+)` ", schemas.read_text("athena_parquet.sql"), re.MULTILINE)
    assert jsonl == top
    assert parquet == [*top, "raw"]


@pytest.mark.parametrize(
    "name", ["duckdb_queries.sql", "trino_queries_jsonl.sql", "trino_queries_parquet.sql"]
)
def test_each_query_file_names_the_two_example_queries(name: str) -> None:
    queries = schemas.named_queries(name)
    assert set(queries) == {"events_per_type_per_hour", "visits_per_location"}
    assert all(query.upper().startswith("SELECT") and ";" not in query for query in queries.values())
