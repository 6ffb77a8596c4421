"""OpenLineage: a DAG run through Airflow, with the OpenLineage provider and its file transport,
reports the API's events as the input and the written objects as the output, and nothing else."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from transfer_helpers import OpenLineageLog, StorageCase, hour, hourly_export_dag

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

pytestmark = pytest.mark.slow

_FACET_BOOKKEEPING = ("_producer", "_schemaURL", "_deleted")


def _facet(facet: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in facet.items() if name not in _FACET_BOOKKEEPING}


def lineage_of(events: list[dict[str, Any]], job_name: str, event_type: str) -> dict[str, list[Any]]:
    """The inputs and outputs of one task's event, with OpenLineage's bookkeeping fields left out."""
    (event,) = [e for e in events if e["job"]["name"] == job_name and e["eventType"] == event_type]
    return {
        "inputs": [
            (d["namespace"], d["name"], {k: _facet(v) for k, v in d.get("facets", {}).items()})
            for d in event["inputs"]
        ],
        "outputs": [
            (d["namespace"], d["name"], {k: _facet(v) for k, v in d.get("outputFacets", {}).items()})
            for d in event["outputs"]
        ],
    }


@pytest.fixture
def lineage_run(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    dags_test: Callable[..., Any],
    openlineage_log: OpenLineageLog,
) -> list[dict[str, Any]]:
    """The OpenLineage events of one hourly run (2024-01-02 03:00 to 04:00) of the two-export DAG."""
    dag_id = f"lineage_{storage.bucket.scheme}"
    done = dags_test(hourly_export_dag(dag_id, storage), dag_id, hour(2, 4), openlineage_log.env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return openlineage_log.events()


def test_the_run_reports_the_api_events_in_and_the_object_out_and_never_a_local_file_or_secret(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    lineage_run: list[dict[str, Any]],
    default_key_of: Any,
    openlineage_log: OpenLineageLog,
) -> None:
    start, end = hour(2, 3), hour(2, 4)
    key = default_key_of(start, end)
    api = ("cloud4wi://" + urlsplit(sim.url).netloc, f"organizations/{sim.organization_id}/events")
    query = {
        "organizationId": sim.organization_id,
        "windowStart": "2024-01-02T03:00:00+00:00",
        "windowEnd": "2024-01-02T04:00:00+00:00",
    }
    written = {
        "rowCount": len(list(sim.expected_events(start, end))),
        "size": len(storage.bucket.read(key)),
        "fileCount": 1,
    }
    location = (f"{storage.bucket.scheme}://{storage.bucket.name}", key)
    job = f"lineage_{storage.bucket.scheme}.export"

    assert lineage_of(lineage_run, job, "START") == {
        "inputs": [(*api, {"cloud4wiEvents": query})],
        "outputs": [(*location, {})],
    }
    assert lineage_of(lineage_run, job, "COMPLETE") == {
        "inputs": [(*api, {"cloud4wiEvents": query})],
        "outputs": [(*location, {"outputStatistics": written})],
    }
    text = openlineage_log.path.read_text()
    assert "file://" not in text
    assert sim.config.client_secret not in text


def test_the_filters_and_a_templated_key_appear_in_the_lineage(
    storage: StorageCase, sim: Cloud4WiSimulator, lineage_run: list[dict[str, Any]]
) -> None:
    start, end = hour(2, 3), hour(2, 4)
    key = "visits/2024-01-02/3.jsonl"
    visits = list(sim.expected_events(start, end, event_types=["visit", "geo_visit"]))

    lineage = lineage_of(lineage_run, f"lineage_{storage.bucket.scheme}.export_visits", "COMPLETE")

    ((_, _, facets),) = lineage["inputs"]
    assert facets["cloud4wiEvents"]["eventTypes"] == ["visit", "geo_visit"]
    assert lineage["outputs"] == [
        (
            f"{storage.bucket.scheme}://{storage.bucket.name}",
            key,
            {
                "outputStatistics": {
                    "rowCount": len(visits),
                    "size": len(storage.bucket.read(key)),
                    "fileCount": 1,
                }
            },
        )
    ]


def test_a_split_export_reports_the_parts_prefix_with_its_file_count(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Any
) -> None:
    start, end = hour(2, 3), hour(2, 4)
    operator = storage.operator(window_start=start, window_end=end, max_events_per_file=50)
    operator.execute(context={})  # type: ignore[arg-type]

    lineage = operator.get_openlineage_facets_on_complete(None)

    (output,) = lineage.outputs
    assert (output.namespace, output.name) == (
        f"{storage.bucket.scheme}://{storage.bucket.name}",
        default_key_of(start, end).removesuffix(".jsonl.gz"),
    )
    events = len(list(sim.expected_events(start, end)))
    assert output.outputFacets["outputStatistics"].fileCount == len(storage.data_names())
    assert output.outputFacets["outputStatistics"].rowCount == events
    assert len(storage.data_names()) == -(-events // 50)


def test_an_export_runs_when_openlineage_cannot_be_imported(
    storage: StorageCase, sim: Cloud4WiSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = ("openlineage", "airflow.providers.openlineage")
    for module in [name for name in sys.modules if name.startswith(hidden)]:
        monkeypatch.delitem(sys.modules, module)
    for package in hidden:  # a None entry makes every import of it fail
        monkeypatch.setitem(sys.modules, package, None)

    result = storage.run(hour(2, 3), hour(2, 4))

    assert result["event_count"] == len(list(sim.expected_events(hour(2, 3), hour(2, 4))))
