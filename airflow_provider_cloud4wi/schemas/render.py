"""Render every shipped table definition from :mod:`airflow_provider_cloud4wi.schemas.model`.

Pure Python, no engine needed: ``python -m airflow_provider_cloud4wi.schemas`` writes the files
:func:`render_all` returns into the package, and a test checks the shipped files equal them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from airflow_provider_cloud4wi.schemas.model import (
    EVENT_FIELDS,
    KEY_PREFIX,
    KNOWN_EVENT_TYPES,
    PARTITIONS,
    PARTITIONS_BY_EVENT_TYPE,
    Field,
    Kind,
)

__all__ = [
    "Layout",
    "athena_ddl",
    "bigquery_schema",
    "duckdb_queries",
    "duckdb_view",
    "json_schema",
    "render_all",
    "trino_queries",
]

#: How the events are landed: gzip JSON Lines (the API's text) or Parquet (typed columns + raw).
Layout = Literal["jsonl", "parquet"]

_HEADER = (
    "-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.\n"
    "-- Regenerate with: python -m airflow_provider_cloud4wi.schemas\n"
)
_RAW_DESCRIPTION = "The event document exactly as the API sent it (JSON text)."
_SCHEMA_ID = (
    "https://github.com/cloud4wi-airflow/airflow-provider-cloud4wi/blob/main/"
    "airflow_provider_cloud4wi/schemas/event.schema.json"
)
#: The bucket placeholder of the DDL and the example globs, to be replaced before use.
_BUCKET = "my-bucket"


def _typed_fields(fields: tuple[Field, ...], layout: Layout) -> tuple[Field, ...]:
    # Parquet has no column for a member of unknown shape: the raw column holds it.
    return tuple(f for f in fields if not (layout == "parquet" and f.kind is Kind.JSON))


# ----------------------------------------------------------------------------------- JSON Schema
def _json_schema_of(field: Field) -> dict[str, Any]:
    description = field.description
    if field.kind is Kind.LOCAL_TIMESTAMP:
        description += " Not UTC despite its Z suffix."
    node: dict[str, Any]
    if field.kind is Kind.STRUCT:
        node = {"type": "object", "properties": {f.name: _json_schema_of(f) for f in field.fields}}
        required = [f.name for f in field.fields if f.required]
        if required:
            node["required"] = required
    elif field.kind in (Kind.TIMESTAMP, Kind.LOCAL_TIMESTAMP):
        node = {"type": "string", "format": "date-time"}
    elif field.kind is Kind.NUMBER_LIST:
        node = {"type": "array", "items": {"type": "number"}}
    elif field.kind is Kind.JSON:
        node = {}
    else:
        node = {"type": field.kind.value}
    return {"description": description, **node}


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of one event document; unknown members are allowed."""
    root = _json_schema_of(Field("event document", Kind.STRUCT, "", EVENT_FIELDS))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _SCHEMA_ID,
        "title": "Cloud4Wi Explore event",
        "description": (
            "One event of GET /v1/organizations/{cid}/events, as landed. Members the API may add "
            "are allowed: every object is open."
        ),
        "type": "object",
        "properties": root["properties"],
        "required": root["required"],
    }


# ----------------------------------------------------------------------------------- BigQuery
_BIGQUERY_TYPES: dict[Kind, str] = {
    Kind.STRING: "STRING",
    Kind.INTEGER: "INTEGER",
    Kind.NUMBER: "FLOAT",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.NUMBER_LIST: "FLOAT",
    Kind.STRUCT: "RECORD",
    Kind.JSON: "JSON",
}


def _bigquery_field(field: Field, layout: Layout) -> dict[str, Any]:
    if field.kind is Kind.LOCAL_TIMESTAMP:
        # BigQuery's JSON loader takes the Z suffix for UTC, so as JSON text it stays a string;
        # Parquet holds it as a timestamp not adjusted to UTC, which BigQuery loads as DATETIME.
        kind = "DATETIME" if layout == "parquet" else "STRING"
    else:
        kind = _BIGQUERY_TYPES[field.kind]
    node: dict[str, Any] = {
        "name": field.name,
        "type": kind,
        "mode": "REPEATED" if field.kind is Kind.NUMBER_LIST else "NULLABLE",
        "description": field.description,
    }
    if field.kind is Kind.STRUCT:
        node["fields"] = [_bigquery_field(f, layout) for f in _typed_fields(field.fields, layout)]
    return node


def bigquery_schema(layout: Layout) -> list[dict[str, Any]]:
    """
    Return the BigQuery schema (the API representation, as ``bq`` and ``SchemaField`` read it).

    The Hive partition columns are not in it: BigQuery's hive partitioning adds them.

    :param layout: ``"jsonl"`` for the gzip JSON Lines objects, ``"parquet"`` for the Parquet ones.
    """
    fields = [_bigquery_field(f, layout) for f in _typed_fields(EVENT_FIELDS, layout)]
    if layout == "parquet":
        fields.append({"name": "raw", "type": "STRING", "mode": "REQUIRED", "description": _RAW_DESCRIPTION})
    return fields


# ----------------------------------------------------------------------------------- Hive / Athena
_HIVE_TYPES: dict[Kind, str] = {
    Kind.STRING: "string",
    Kind.INTEGER: "bigint",
    Kind.NUMBER: "double",
    Kind.TIMESTAMP: "timestamp",
    Kind.LOCAL_TIMESTAMP: "timestamp",
    Kind.NUMBER_LIST: "array<double>",
}


def _hive_type(field: Field, layout: Layout) -> str:
    if field.kind is Kind.STRUCT:
        members = ",".join(
            f"{f.name}:{_hive_type(f, layout)}" for f in field.fields if f.kind is not Kind.JSON
        )
        return f"struct<{members}>"
    if layout == "jsonl" and field.kind in (Kind.TIMESTAMP, Kind.LOCAL_TIMESTAMP):
        # The text as sent; from_iso8601_timestamp() reads it in queries.
        return "string"
    return _HIVE_TYPES[field.kind]


def _projection(partitions: tuple[str, ...]) -> list[tuple[str, str]]:
    properties = [("projection.enabled", "true")]
    for name in partitions:
        if name == "organization_id":
            # Injected: every query names its organization, so no list of ids is kept in the table.
            properties.append(("projection.organization_id.type", "injected"))
        elif name == "date":
            properties += [
                ("projection.date.type", "date"),
                ("projection.date.format", "yyyy-MM-dd"),
                ("projection.date.range", "2020-01-01,NOW"),
                ("projection.date.interval", "1"),
                ("projection.date.interval.unit", "DAYS"),
            ]
        elif name == "event_type":
            properties += [
                ("projection.event_type.type", "enum"),
                # "unknown" is where a partitioned export puts the events whose type cannot name a
                # path segment (export_files.UNKNOWN_EVENT_TYPE): without it they would be invisible.
                ("projection.event_type.values", ",".join((*KNOWN_EVENT_TYPES, "unknown"))),
            ]
    levels = "/".join(f"{name}=${{{name}}}" for name in partitions)
    properties.append(("storage.location.template", f"s3://{_BUCKET}/{KEY_PREFIX}/{levels}/"))
    return properties


def athena_ddl(layout: Layout, partitions: tuple[str, ...] = PARTITIONS) -> str:
    """
    Return the Athena (Hive DDL) ``CREATE EXTERNAL TABLE`` with partition projection.

    :param layout: ``"jsonl"`` or ``"parquet"``.
    :param partitions: the Hive levels of the keys, outermost first.
    """
    table = f"cloud4wi_events_{layout}" + ("_by_event_type" if "event_type" in partitions else "")
    columns = [f"  `{f.name}` {_hive_type(f, layout)}" for f in _typed_fields(EVENT_FIELDS, layout)]
    if layout == "parquet":
        columns.append("  `raw` string")
    if layout == "jsonl":
        storage = (
            "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
            "WITH SERDEPROPERTIES ('case.insensitive' = 'true')\n"
        )
    else:
        storage = "STORED AS PARQUET\n"
    properties = ",\n".join(f"  '{key}' = '{value}'" for key, value in _projection(partitions))
    return (
        f"{_HEADER}"
        f"-- Replace {_BUCKET} with your bucket (twice). Keep each format under a prefix of its own:\n"
        "-- Athena reads every object below LOCATION, whatever its extension.\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n"
        + ",\n".join(columns)
        + "\n)\n"
        + "PARTITIONED BY ("
        + ", ".join(f"`{name}` string" for name in partitions)
        + ")\n"
        + storage
        + f"LOCATION 's3://{_BUCKET}/{KEY_PREFIX}/'\n"
        + f"TBLPROPERTIES (\n{properties}\n);\n"
    )


# ----------------------------------------------------------------------------------- DuckDB
_DUCKDB_TYPES: dict[Kind, str] = {
    Kind.STRING: "VARCHAR",
    Kind.INTEGER: "BIGINT",
    Kind.NUMBER: "DOUBLE",
    Kind.TIMESTAMP: "TIMESTAMPTZ",
    Kind.LOCAL_TIMESTAMP: "TIMESTAMP",
    Kind.NUMBER_LIST: "DOUBLE[]",
    Kind.JSON: "JSON",
}


def _duckdb_type(field: Field) -> str:
    if field.kind is Kind.STRUCT:
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duckdb_type(f)}' for f in field.fields) + ")"
    return _DUCKDB_TYPES[field.kind]


def duckdb_view(layout: Layout) -> str:
    """
    Return the DuckDB statement creating view ``cloud4wi_events`` over the landed objects.

    It reads the glob in the variable ``cloud4wi_events_glob`` (``SET VARIABLE``, DuckDB 1.1+), with
    the Hive levels as columns (``date`` as a DATE, the others as text), with or without an
    ``event_type`` level.

    :param layout: ``"jsonl"`` or ``"parquet"``.
    """
    common = "hive_partitioning = true, hive_types_autocast = false"
    if layout == "parquet":
        source = f"read_parquet(getvariable('cloud4wi_events_glob'), {common})"
    else:
        columns = ",\n    ".join(f"\"{f.name}\": '{_duckdb_type(f)}'" for f in EVENT_FIELDS)
        source = (
            "read_json(\n  getvariable('cloud4wi_events_glob'),\n  format = 'newline_delimited',\n"
            f"  {common},\n"
            f"  columns = {{\n    {columns}\n  }}\n)"
        )
    glob = f"s3://{_BUCKET}/{KEY_PREFIX}/**/*" + (".parquet" if layout == "parquet" else ".jsonl.gz")
    return (
        f"{_HEADER}"
        f"-- SET VARIABLE cloud4wi_events_glob = '{glob}';\n"
        "CREATE OR REPLACE VIEW cloud4wi_events AS\n"
        'SELECT * REPLACE (CAST("date" AS DATE) AS "date")\n'
        f"FROM {source};\n"
    )


# ----------------------------------------------------------------------------------- queries
def _queries(
    entries: list[tuple[str, str, str]],
) -> str:
    blocks = [f"-- name: {name}\n-- {about}\n{sql.strip()};\n" for name, about, sql in entries]
    return _HEADER + "\n" + "\n".join(blocks)


_EVENTS_PER_TYPE_PER_HOUR = "Events per type per UTC hour."
_VISITS_PER_LOCATION = "Visits per location, with their average duration."


def duckdb_queries() -> str:
    """Return the example DuckDB queries over view ``cloud4wi_events`` (either layout)."""
    return _queries(
        [
            (
                "events_per_type_per_hour",
                _EVENTS_PER_TYPE_PER_HOUR,
                """
SELECT event.type AS event_type,
       date_trunc('hour', "when".createdAt AT TIME ZONE 'UTC') AS hour_utc,
       count(*) AS events
FROM cloud4wi_events
GROUP BY ALL
ORDER BY hour_utc, event_type
""",
            ),
            (
                "visits_per_location",
                _VISITS_PER_LOCATION,
                """
SELECT "where".locationId AS location_id,
       "where".locationName AS location_name,
       count(*) AS visits,
       avg(event.visit.duration) AS avg_duration
FROM cloud4wi_events
WHERE event.type = 'visit'
GROUP BY ALL
ORDER BY visits DESC, location_id
""",
            ),
        ]
    )


def trino_queries(layout: Layout) -> str:
    """
    Return the example Trino (Athena engine 3) queries over the Athena table of ``layout``.

    :param layout: ``"jsonl"`` (timestamps are text there) or ``"parquet"``.
    """
    table = f"cloud4wi_events_{layout}"
    created_at = (
        '"when".createdAt'
        if layout == "parquet"
        else "from_iso8601_timestamp(\"when\".createdAt) AT TIME ZONE 'UTC'"
    )
    # Injected projection: every query must name its organization.
    scope = f"""FROM {table}
WHERE organization_id = '<cid>'
  AND "date" BETWEEN '2024-05-01' AND '2024-05-07'"""
    return _queries(
        [
            (
                "events_per_type_per_hour",
                _EVENTS_PER_TYPE_PER_HOUR,
                f"""
SELECT event.type AS event_type,
       date_trunc('hour', {created_at}) AS hour_utc,
       count(*) AS events
{scope}
GROUP BY 1, 2
ORDER BY 2, 1
""",
            ),
            (
                "visits_per_location",
                _VISITS_PER_LOCATION + " With a by_event_type table, add AND event_type = 'visit'.",
                f"""
SELECT "where".locationId AS location_id,
       "where".locationName AS location_name,
       count(*) AS visits,
       avg(event.visit.duration) AS avg_duration
{scope}
  AND event.type = 'visit'
GROUP BY 1, 2
ORDER BY 3 DESC, 1
""",
            ),
        ]
    )


# ----------------------------------------------------------------------------------- all files
def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


_RENDERERS: dict[str, Callable[[], str]] = {
    "event.schema.json": lambda: _json_text(json_schema()),
    "bigquery_jsonl.json": lambda: _json_text(bigquery_schema("jsonl")),
    "bigquery_parquet.json": lambda: _json_text(bigquery_schema("parquet")),
    "athena_jsonl.sql": lambda: athena_ddl("jsonl"),
    "athena_jsonl_by_event_type.sql": lambda: athena_ddl("jsonl", PARTITIONS_BY_EVENT_TYPE),
    "athena_parquet.sql": lambda: athena_ddl("parquet"),
    "athena_parquet_by_event_type.sql": lambda: athena_ddl("parquet", PARTITIONS_BY_EVENT_TYPE),
    "duckdb_view_jsonl.sql": lambda: duckdb_view("jsonl"),
    "duckdb_view_parquet.sql": lambda: duckdb_view("parquet"),
    "duckdb_queries.sql": duckdb_queries,
    "trino_queries_jsonl.sql": lambda: trino_queries("jsonl"),
    "trino_queries_parquet.sql": lambda: trino_queries("parquet"),
}


def render_all() -> dict[str, str]:
    """Return every shipped file's name and text, as generated now."""
    return {name: render() for name, render in _RENDERERS.items()}
