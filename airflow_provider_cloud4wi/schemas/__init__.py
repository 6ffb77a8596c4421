"""Table definitions of the landed events, shipped as package data and generated from one description.

Every file here is rendered by :mod:`airflow_provider_cloud4wi.schemas.render` from
:mod:`airflow_provider_cloud4wi.schemas.model`, so none can drift from another:

========================================  ==========================================================
file                                      what
========================================  ==========================================================
``event.schema.json``                     JSON Schema (2020-12) of one event document
``bigquery_jsonl.json``                   BigQuery schema of the gzip JSON Lines objects
``bigquery_parquet.json``                 BigQuery schema of the Parquet objects (typed + ``raw``)
``athena_{jsonl,parquet}.sql``            Athena / Glue DDL, partition projection, default keys
``athena_*_by_event_type.sql``            the same with the ``event_type=`` level
``duckdb_view_{jsonl,parquet}.sql``       DuckDB view ``cloud4wi_events`` over a glob of objects
``duckdb_queries.sql``                    DuckDB example queries over that view
``trino_queries_{jsonl,parquet}.sql``     Trino / Athena example queries over the Athena tables
========================================  ==========================================================

``python -m airflow_provider_cloud4wi.schemas`` rewrites them after a change to the description.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from airflow_provider_cloud4wi.schemas.render import Layout, render_all

__all__ = ["Layout", "bigquery_schema", "event_json_schema", "named_queries", "read_text", "render_all"]

_QUERY_NAME = re.compile(r"^-- name: (\S+)$", re.MULTILINE)


def read_text(name: str) -> str:
    """
    Return the text of a shipped file, e.g. ``read_text("athena_parquet.sql")``.

    :param name: the file name, as listed in this module's docstring.
    """
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def event_json_schema() -> dict[str, Any]:
    """Return the shipped JSON Schema of one event document."""
    schema: dict[str, Any] = json.loads(read_text("event.schema.json"))
    return schema


def bigquery_schema(layout: Layout) -> list[dict[str, Any]]:
    """
    Return the shipped BigQuery schema, as ``SchemaField.from_api_repr`` takes each field.

    :param layout: ``"jsonl"`` or ``"parquet"``.
    """
    schema: list[dict[str, Any]] = json.loads(read_text(f"bigquery_{layout}.json"))
    return schema


def named_queries(name: str) -> dict[str, str]:
    """
    Return the queries of a shipped ``.sql`` file by their ``-- name:``, each without its ``;``.

    :param name: the file name, e.g. ``"duckdb_queries.sql"``.
    """
    text = read_text(name)
    marks = list(_QUERY_NAME.finditer(text))
    queries: dict[str, str] = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() : following.start() if following else len(text)]
        statement = "\n".join(line for line in body.splitlines() if not line.startswith("--"))
        queries[mark.group(1)] = statement.strip().rstrip(";").strip()
    return queries
