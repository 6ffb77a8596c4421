"""Two runs exporting the same window at once (an hourly DAG and a backfill, say): one run's export, whole.

Whatever order their uploads, manifests and clean-ups interleave in, the manifest in place at the
end names one run's complete export, and every object it lists is in the bucket as it lists it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from crash_tools import DagProcess, export_dag
from storage_servers import stored_manifest
from transfer_helpers import FAST_RETRIES, StorageCase, decode_lines, file_checksum_of, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.testing.simulator import Faults
from airflow_provider_cloud4wi.transfers.manifest import Manifest

WINDOW = (hour(2, 0), hour(2, 12))
#: Many objects per run: one set of parts per event type, at most 40 events each.
LAYOUT: dict[str, Any] = {"partition_by": "event_type", "max_events_per_file": 40}
#: A little latency per page, so the two pulls (and so the uploads after them) overlap.
OVERLAP = Faults(latency_ms=30)


def allow_execute_in_this_thread() -> None:
    """
    Let ``execute()`` be called directly in a thread other than the main one, as in the main one.

    Airflow 2's guard against calling ``execute()`` outside a task instance keeps its state in a
    thread-local that only the main thread has; a thread of its own fails on reading it.
    """
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:  # Airflow 3 has no such guard there
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def run_at_once(storage: StorageCase, *runs: dict[str, Any]) -> list[dict[str, Any]]:
    """Execute one operator per keyword set in threads released together; return their results."""
    barrier = threading.Barrier(len(runs))
    results: list[Any] = [None] * len(runs)

    def run(index: int, params: dict[str, Any]) -> None:
        allow_execute_in_this_thread()
        operator = storage.operator(window_start=WINDOW[0], window_end=WINDOW[1], **params)
        barrier.wait()
        try:
            results[index] = operator.execute(context={})  # type: ignore[arg-type]
        except BaseException as err:
            results[index] = err

    threads = [threading.Thread(target=run, args=(index, params)) for index, params in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    failures = [result for result in results if isinstance(result, BaseException)]
    assert not failures, failures
    return results


def key_of(uri: str) -> str:
    """The object name of a ``<scheme>://<bucket>/<key>`` URI."""
    return uri.split("/", 3)[3]


def listed_events(storage: StorageCase, manifest: Manifest) -> dict[str | None, list[dict[str, Any]]]:
    """
    Read every object the manifest lists, checking that it is there as listed (bytes, events,
    checksum, event type); return the events of each event type, in the order of the manifest.
    """
    events: dict[str | None, list[dict[str, Any]]] = {}
    for item in manifest.objects:
        data = storage.bucket.read(item.key)
        lines = decode_lines(data)
        assert (item.bytes, item.events) == (len(data), len(lines)), item.key
        assert item.checksum == file_checksum_of(data, item.checksum.algorithm), item.key
        assert {line["event"]["type"] for line in lines} <= {item.event_type}, item.key
        events.setdefault(item.event_type, []).extend(lines)
    return events


def by_type(documents: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """The documents grouped by event type, each group in the original order."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for document in documents:
        groups.setdefault(document["event"]["type"], []).append(document)
    return groups


@pytest.fixture
def earlier_export(storage: StorageCase) -> set[str]:
    """An export of the window made before the two runs: the objects its manifest lists."""
    result = storage.run(*WINDOW, **LAYOUT)
    return {key_of(uri) for uri in result["objects"]}


def test_two_runs_of_one_window_at_once_leave_one_runs_complete_export_in_its_manifest(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    earlier_export: set[str],
    default_key_of: Callable[..., str],
) -> None:
    sim.set_faults(OVERLAP)

    results = run_at_once(storage, LAYOUT, LAYOUT)

    manifest = stored_manifest(storage.bucket, default_key_of(*WINDOW))
    assert sorted(manifest.keys) in [sorted(key_of(uri) for uri in result["objects"]) for result in results]
    assert all(f".{manifest.run}." in key for key in manifest.keys)
    assert listed_events(storage, manifest) == by_type(list(sim.expected_events(*WINDOW)))


def test_two_runs_at_once_never_leave_a_manifest_listing_a_missing_or_altered_object(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    earlier_export: set[str],
    default_key_of: Callable[..., str],
) -> None:
    sim.set_faults(OVERLAP)

    run_at_once(storage, LAYOUT, LAYOUT)

    manifest = stored_manifest(storage.bucket, default_key_of(*WINDOW))
    assert set(manifest.keys) <= set(storage.object_names())
    assert not set(manifest.keys) & earlier_export
    assert manifest.event_count == sum(len(events) for events in listed_events(storage, manifest).values())


def test_the_earlier_export_replaced_by_two_runs_at_once_is_removed(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    earlier_export: set[str],
) -> None:
    sim.set_faults(OVERLAP)

    run_at_once(storage, LAYOUT, LAYOUT)

    assert not earlier_export & set(storage.object_names())


def test_two_runs_at_once_that_pull_different_data_leave_one_of_them_whole(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    cloud4wi_simulator_factory: Any,
    connect: Callable[..., str],
    default_key_of: Callable[..., str],
) -> None:
    # The same organization's API before the window's late events were published: half the window.
    early = cloud4wi_simulator_factory(sim.config, data_end=hour(2, 6), faults=OVERLAP)
    sim.set_faults(OVERLAP)
    early_conn = connect(early, conn_id="cloud4wi_early")

    complete, partial = run_at_once(storage, LAYOUT, {**LAYOUT, "cloud4wi_conn_id": early_conn})

    manifest = stored_manifest(storage.bucket, default_key_of(*WINDOW))
    expected = {
        tuple(sorted(key_of(uri) for uri in complete["objects"])): list(sim.expected_events(*WINDOW)),
        tuple(sorted(key_of(uri) for uri in partial["objects"])): list(early.expected_events(*WINDOW)),
    }
    assert listed_events(storage, manifest) == by_type(expected[tuple(sorted(manifest.keys))])


def concurrent_dag(dag_id: str, storage: StorageCase) -> str:
    """One export task of the test window with the concurrency layout."""
    operator_class, bucket = storage.operator_class, storage.bucket.name
    params = {**LAYOUT, "hook_params": FAST_RETRIES, "page_size": 100, "max_concurrency": 1}
    return export_dag(dag_id, operator_class, storage.bucket_param, bucket, WINDOW, **params)


@pytest.mark.slow
def test_an_hourly_dag_and_a_backfill_dag_exporting_one_window_at_once_leave_one_complete_export(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    earlier_export: set[str],
    start_dag_run: Callable[..., DagProcess],
    default_key_of: Callable[..., str],
) -> None:
    sim.set_faults(OVERLAP)
    runs = [
        start_dag_run(
            concurrent_dag(dag_id, storage), dag_id, dt.datetime(2024, 1, 3, tzinfo=dt.timezone.utc), {}
        )
        for dag_id in ("concurrent_hourly", "concurrent_backfill")
    ]

    assert [run.wait() for run in runs] == [0, 0], [run.output()[-3000:] for run in runs]

    manifest = stored_manifest(storage.bucket, default_key_of(*WINDOW))
    assert all(f".{manifest.run}." in key for key in manifest.keys)
    assert not set(manifest.keys) & earlier_export
    assert listed_events(storage, manifest) == by_type(list(sim.expected_events(*WINDOW)))
