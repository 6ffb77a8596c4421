"""Behaviour every Cloud4Wi events transfer shares, checked against S3 (moto) and GCS (emulator)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import (
    FAST_RETRIES,
    RUN,
    StorageCase,
    decode_lines,
    file_checksum_of,
    hour,
    hourly_export_dag,
)

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiAuthError
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults
from airflow_provider_cloud4wi.transfers.base import Cloud4WiStorageError
from airflow_provider_cloud4wi.transfers.events_to_gcs import Cloud4WiEventsToGCSOperator
from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator
from airflow_provider_cloud4wi.windows import ZeroWidthWindowError

OPERATORS = {"s3": (Cloud4WiEventsToS3Operator, "s3_bucket"), "gcs": (Cloud4WiEventsToGCSOperator, "bucket")}


def events_of(storage: StorageCase, key: str, *, compressed: bool = True) -> list[dict[str, Any]]:
    return decode_lines(storage.bucket.read(key), compressed=compressed)


def connection_to(
    sim: Cloud4WiSimulator, set_connection: Callable[..., str], conn_id: str, **extra: Any
) -> str:
    config = sim.config
    return set_connection(
        conn_id, "cloud4wi", host=sim.url, login=config.client_key, password=config.client_secret, extra=extra
    )


# ----------------------------------------------------------------------------- content and keys
def test_each_interval_object_holds_exactly_its_events_once_across_consecutive_intervals(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    bounds = [hour(1, 22), hour(1, 23), hour(2, 0), hour(2, 1)]  # crosses midnight
    for start, end in itertools.pairwise(bounds):
        storage.run(start, end)

    keys = [default_key_of(start, end) for start, end in itertools.pairwise(bounds)]
    assert storage.data_names() == sorted(keys)
    for (start, end), key in zip(itertools.pairwise(bounds), keys, strict=True):
        assert events_of(storage, key) == list(sim.expected_events(start, end))
    everything = [event for key in keys for event in events_of(storage, key)]
    assert everything == list(sim.expected_events(bounds[0], bounds[-1]))


def test_default_key_is_hive_style_with_the_connections_organization_and_the_window(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.run(hour(3, 2), hour(3, 3))
    stem = (
        f"cloud4wi/events/organization_id={sim.organization_id}/date=2024-01-03/"
        "events_20240103T020000Z_20240103T030000Z"
    )
    assert storage.object_names() == [f"{stem}.jsonl.gz", f"{stem}.manifest.json"]


def test_organization_id_parameter_is_used_for_the_pull_and_the_key(
    storage: StorageCase, sim: Cloud4WiSimulator, set_connection: Callable[..., str]
) -> None:
    conn_id = connection_to(sim, set_connection, "cloud4wi_no_org")
    result = storage.run(
        hour(1, 5), hour(1, 6), cloud4wi_conn_id=conn_id, organization_id=sim.organization_id
    )
    (key,) = storage.data_names()
    assert key.startswith(f"cloud4wi/events/organization_id={sim.organization_id}/date=2024-01-01/")
    assert result["event_count"] == len(list(sim.expected_events(hour(1, 5), hour(1, 6))))


def test_missing_organization_for_the_default_key_is_explained(
    storage: StorageCase, sim: Cloud4WiSimulator, set_connection: Callable[..., str]
) -> None:
    conn_id = connection_to(sim, set_connection, "cloud4wi_no_org")
    with pytest.raises(ValueError, match=r"No organization id.*pass organization_id, or set"):
        storage.run(hour(1, 5), hour(1, 6), cloud4wi_conn_id=conn_id)
    assert storage.object_names() == []


def test_result_lists_uris_manifest_count_bytes_and_window_only(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    result = storage.run(hour(2, 10), hour(2, 11))
    key = default_key_of(hour(2, 10), hour(2, 11))
    assert result == {
        "objects": [storage.uri(key)],
        "manifest": storage.uri(key.replace(".jsonl.gz", ".manifest.json")),
        "event_count": len(list(sim.expected_events(hour(2, 10), hour(2, 11)))),
        "bytes": len(storage.bucket.read(key)),
        "window_start": "2024-01-02T10:00:00+00:00",
        "window_end": "2024-01-02T11:00:00+00:00",
    }


def test_objects_carry_a_content_type_matching_their_bytes(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    storage.run(hour(1, 0), hour(1, 1))
    storage.run(hour(1, 1), hour(1, 2), compression=None)
    assert storage.bucket.content_type(default_key_of(hour(1, 0), hour(1, 1))) == "application/gzip"
    plain = default_key_of(hour(1, 1), hour(1, 2), ".jsonl")
    assert storage.bucket.content_type(plain) == "application/x-ndjson"


def test_uncompressed_export_is_plain_json_lines_at_a_jsonl_key(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    storage.run(hour(4, 7), hour(4, 8), compression=None)
    key = default_key_of(hour(4, 7), hour(4, 8), ".jsonl")
    assert storage.data_names() == [key]
    assert events_of(storage, key, compressed=False) == list(sim.expected_events(hour(4, 7), hour(4, 8)))


def test_filters_export_only_the_matching_events_to_an_explicit_key(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    customer = sim.customer_ids()[3]
    storage.run(hour(1, 0), hour(1, 12), key="exports/visits.jsonl.gz", event_types=["visit", "login"])
    storage.run(hour(1, 0), hour(1, 12), key="exports/customer.jsonl.gz", customer_id=customer)

    visits = list(sim.expected_events(hour(1, 0), hour(1, 12), event_types=["visit", "login"]))
    mine = list(sim.expected_events(hour(1, 0), hour(1, 12), customer_id=customer))
    assert events_of(storage, "exports/visits.jsonl.gz") == visits
    assert events_of(storage, "exports/customer.jsonl.gz") == mine
    assert 0 < len(mine) < len(visits)


# ----------------------------------------------------------------------------- parts and re-runs
def test_split_export_writes_numbered_parts_of_at_most_n_events_beside_the_key(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=50)
    parts = storage.data_names()
    assert [re.sub(RUN, "<run>", key) for key in parts] == [
        "out/events.<run>.part-00000.jsonl.gz",
        "out/events.<run>.part-00001.jsonl.gz",
        "out/events.<run>.part-00002.jsonl.gz",
    ]
    assert [len(events_of(storage, key)) for key in parts] == [50, 50, 20]
    assert [e for key in parts for e in events_of(storage, key)] == list(
        sim.expected_events(hour(1, 2), hour(1, 3))
    )
    assert result["objects"] == [storage.uri(key) for key in parts]
    assert result["manifest"] == storage.uri("out/events.manifest.json")


def test_the_manifest_lists_every_object_with_its_events_bytes_and_checksum(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=50)

    manifest = storage.manifest("out/events.manifest.json")
    assert manifest.keys == storage.data_names()
    assert [item.uri for item in manifest.objects] == result["objects"]
    for item in manifest.objects:
        stored = storage.bucket.read(item.key)
        assert (item.events, item.bytes) == (len(events_of(storage, item.key)), len(stored))
        assert item.checksum == file_checksum_of(stored, item.checksum.algorithm)
    assert (manifest.event_count, manifest.bytes) == (result["event_count"], result["bytes"])
    assert (manifest.window_start, manifest.window_end) == (result["window_start"], result["window_end"])
    assert (manifest.organization_id, manifest.file_format, manifest.compression) == (
        sim.organization_id,
        "jsonl",
        "gzip",
    )


def test_rerun_rewrites_the_same_key_with_the_same_content(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    first = storage.run(hour(1, 2), hour(1, 3))
    before = storage.data_snapshot()
    second = storage.run(hour(1, 2), hour(1, 3))
    assert second == first
    assert storage.data_snapshot() == before


def test_rerun_of_a_split_export_replaces_the_parts_with_its_own_and_the_same_content(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    first = storage.run(hour(1, 2), hour(1, 3), max_events_per_file=40)
    before = list(storage.data_snapshot().values())
    second = storage.run(hour(1, 2), hour(1, 3), max_events_per_file=40)

    assert set(second["objects"]).isdisjoint(first["objects"])
    assert [storage.uri(key) for key in storage.data_names()] == second["objects"]
    assert list(storage.data_snapshot().values()) == before


def test_rerun_replaces_objects_that_changed_since_the_last_run(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.bucket.put("out/events.jsonl.gz", b"stale bytes of an older export")
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz")
    assert events_of(storage, "out/events.jsonl.gz") == list(sim.expected_events(hour(1, 2), hour(1, 3)))


def test_rerun_without_split_removes_stale_parts_and_spares_the_neighbouring_interval(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    storage.run(hour(1, 2), hour(1, 3), max_events_per_file=50)
    storage.run(hour(1, 3), hour(1, 4), max_events_per_file=50)
    neighbour = {key: data for key, data in storage.snapshot().items() if "T030000Z_20240101T040000Z" in key}
    assert len(neighbour) == 4  # three parts and their manifest

    storage.run(hour(1, 2), hour(1, 3))

    key = default_key_of(hour(1, 2), hour(1, 3))
    assert storage.object_names() == sorted([key, key.replace(".jsonl.gz", ".manifest.json"), *neighbour])
    assert events_of(storage, key) == list(sim.expected_events(hour(1, 2), hour(1, 3)))
    assert {k: v for k, v in storage.snapshot().items() if k in neighbour} == neighbour


def test_rerun_with_fewer_parts_removes_the_extra_parts(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=30)
    assert len(storage.data_names()) == 4
    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=100)
    assert [storage.uri(key) for key in storage.data_names()] == result["objects"]
    assert len(result["objects"]) == 2
    everything = [e for key in storage.data_names() for e in events_of(storage, key)]
    assert everything == list(sim.expected_events(hour(1, 2), hour(1, 3)))


def test_rerun_with_split_removes_the_unsplit_key(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz")
    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=100)
    assert [storage.uri(key) for key in storage.data_names()] == result["objects"]
    assert "out/events.jsonl.gz" not in storage.data_names()


def test_rerun_without_a_split_removes_the_parts_of_the_split_run(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=100)
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz")
    assert storage.object_names() == ["out/events.jsonl.gz", "out/events.manifest.json"]
    assert storage.manifest("out/events.jsonl.gz").keys == ["out/events.jsonl.gz"]


def test_parts_written_without_manifests_are_removed_by_the_next_run(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=50, manifest=False)
    assert storage.object_names() == [f"out/events.part-0000{n}.jsonl.gz" for n in range(3)]

    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=50)

    assert [storage.uri(key) for key in storage.data_names()] == result["objects"]
    assert all(
        re.fullmatch(rf"out/events\.{RUN}\.part-\d{{5}}\.jsonl\.gz", key) for key in storage.data_names()
    )


def test_objects_that_only_share_a_prefix_with_the_key_are_never_deleted(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    others = [
        "out/events.jsonl.gz.bak",
        "out/events2.jsonl.gz",
        "out/events.part-7.jsonl.gz",
        "out/events.part-00000.jsonl",
        "out/events.jsonl",
        "out/events_old/part.jsonl.gz",
    ]
    for key in others:
        storage.bucket.put(key, b"not ours")
    result = storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=60)
    written = [uri.removeprefix(storage.uri("")) for uri in result["objects"]]
    assert storage.object_names() == sorted([*others, *written, "out/events.manifest.json"])


def test_a_fresh_part_of_another_tasks_run_is_left_alone(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    in_flight = "out/events.0123abcd-ffffff.part-00000.jsonl.gz"
    storage.bucket.put(in_flight, b"a part another task is uploading now")
    storage.run(hour(1, 2), hour(1, 3), key="out/events.jsonl.gz", max_events_per_file=60)
    assert storage.bucket.read(in_flight) == b"a part another task is uploading now"
    assert in_flight not in storage.manifest("out/events.manifest.json").keys


# ----------------------------------------------------------------------------- empty and invalid windows
def test_empty_interval_writes_one_valid_empty_object(
    storage: StorageCase, sim: Cloud4WiSimulator, default_key_of: Callable[..., str]
) -> None:
    start, end = (
        dt.datetime(2023, 6, 1, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2023, 6, 1, 1, tzinfo=dt.timezone.utc),
    )
    result = storage.run(start, end)
    key = default_key_of(start, end)
    assert storage.data_names() == [key]
    assert events_of(storage, key) == []
    assert (result["event_count"], result["objects"]) == (0, [storage.uri(key)])


def test_empty_interval_without_write_empty_writes_nothing_and_removes_an_earlier_export(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    start, end = (
        dt.datetime(2023, 6, 1, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2023, 6, 1, 1, tzinfo=dt.timezone.utc),
    )
    storage.bucket.put("out/events.jsonl.gz", b"an export made when the window still had events")
    result = storage.run(start, end, key="out/events.jsonl.gz", write_empty=False)
    assert storage.object_names() == []
    assert (result["event_count"], result["objects"], result["bytes"]) == (0, [], 0)


def test_zero_width_window_is_refused_naming_the_fixes(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    with pytest.raises(ZeroWidthWindowError) as refused:
        storage.run(hour(1, 3), hour(1, 3))
    message = str(refused.value)
    for fix in (
        "CronDataIntervalTimetable",
        "CronTriggerTimetable(",
        "interval=",
        "create_cron_data_intervals",
        "CronPartitionTimetable(",
    ):
        assert fix in message
    assert "window_start/window_end" in message
    assert storage.object_names() == []


def test_window_end_before_start_is_refused(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    with pytest.raises(ValueError, match=r"window_end \(2024-01-01T02:00:00\+00:00\) is before window_start"):
        storage.run(hour(1, 3), hour(1, 2))
    assert storage.object_names() == []


def test_window_text_that_is_not_a_datetime_is_refused_naming_the_parameter(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    operator = storage.operator(window_start="None", window_end="2024-01-01T03:00:00+00:00")
    with pytest.raises(ValueError, match="window_start='None' is not an ISO 8601 date-time"):
        operator.execute(context={})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- failures
def test_missing_bucket_fails_with_a_message_naming_the_bucket(
    storage: StorageCase, sim: Cloud4WiSimulator, temp_root: Path
) -> None:
    operator = storage.operator(
        window_start=hour(1, 2), window_end=hour(1, 3), **{storage.bucket_param: "no-such-bucket-c4w"}
    )
    with pytest.raises(Cloud4WiStorageError, match=r"no-such-bucket-c4w") as failed:
        operator.execute(context={})  # type: ignore[arg-type]
    assert "Check that bucket 'no-such-bucket-c4w' exists" in str(failed.value)
    assert "NoSuchBucket" in str(failed.value) or "404" in str(failed.value)  # the storage's own words
    assert sim.stats["requests"]["organization_events"] == 0  # refused before pulling anything
    assert list(temp_root.iterdir()) == []


def test_bucket_given_as_a_uri_is_refused_with_a_hint(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    operator = storage.operator(
        window_start=hour(1, 2),
        window_end=hour(1, 3),
        **{storage.bucket_param: f"s3://{storage.bucket.name}"},
    )
    with pytest.raises(ValueError, match=rf"{storage.bucket_param} must be a bucket name"):
        operator.execute(context={})  # type: ignore[arg-type]


def test_failed_upload_leaves_the_previous_export_and_nothing_new(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    mocker: Any,
    temp_root: Path,
    default_key_of: Callable[..., str],
) -> None:
    storage.run(hour(1, 2), hour(1, 3))
    before = storage.snapshot()
    hook_class, method = storage.upload_method
    real_upload = getattr(hook_class, method)
    calls = itertools.count(1)

    def second_upload_fails(self: Any, *args: Any, **kwargs: Any) -> None:
        if next(calls) == 2:
            raise ConnectionError("connection reset by peer")
        real_upload(self, *args, **kwargs)

    mocker.patch.object(hook_class, method, autospec=True, side_effect=second_upload_fails)
    with pytest.raises(Cloud4WiStorageError) as failed:
        storage.run(hour(1, 2), hour(1, 3), max_events_per_file=50)

    stem = default_key_of(hour(1, 2), hour(1, 3)).removesuffix(".jsonl.gz")
    assert re.search(rf"{re.escape(stem)}\.{RUN}\.part-00001\.jsonl\.gz", str(failed.value))
    assert "connection reset by peer" in str(failed.value)
    assert storage.snapshot() == before
    assert list(temp_root.iterdir()) == []


def test_api_failure_leaves_the_bucket_untouched(
    storage: StorageCase, sim: Cloud4WiSimulator, set_connection: Callable[..., str], temp_root: Path
) -> None:
    storage.run(hour(1, 2), hour(1, 3))
    before = storage.snapshot()
    conn_id = set_connection(
        "cloud4wi_revoked",
        "cloud4wi",
        host=sim.url,
        login=sim.config.client_key,
        password="revoked-secret",
        extra={"organization_id": sim.organization_id},
    )
    with pytest.raises(Cloud4WiAuthError, match="cloud4wi_revoked"):
        storage.run(hour(1, 2), hour(1, 3), cloud4wi_conn_id=conn_id)
    assert storage.snapshot() == before
    assert list(temp_root.iterdir()) == []


def test_temp_files_are_removed_after_a_successful_run(
    storage: StorageCase, sim: Cloud4WiSimulator, temp_root: Path
) -> None:
    storage.run(hour(1, 2), hour(1, 3), max_events_per_file=25)
    assert len(storage.data_names()) == 5
    assert list(temp_root.iterdir()) == []


def test_unreliable_api_still_exports_every_event_exactly_once(
    storage: StorageCase,
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    set_connection: Callable[..., str],
) -> None:
    faults = Faults(
        rate_limit=0.1,
        server_error=0.1,
        connection_reset=0.05,
        truncated_body=0.05,
        lost_reply=0.05,
        spurious_401=0.05,
        duplicates=0.2,
        scroll_expiry=0.1,
        retry_after=0,
    )
    flaky = cloud4wi_simulator_factory(faults=faults)
    conn_id = connection_to(flaky, set_connection, "cloud4wi_flaky", organization_id=flaky.organization_id)
    bounds = [hour(5, 9), hour(5, 10), hour(5, 11), hour(5, 12)]
    for start, end in itertools.pairwise(bounds):
        storage.run(start, end, cloud4wi_conn_id=conn_id, page_size=20, max_events_per_file=70)

    everything = [e for key in storage.data_names() for e in events_of(storage, key)]
    assert everything == list(flaky.expected_events(bounds[0], bounds[-1]))
    assert sum(flaky.stats["faults"].values()) > 5


def test_the_api_token_is_revoked_after_success_and_after_failure(
    storage: StorageCase, sim: Cloud4WiSimulator, mocker: Any
) -> None:
    storage.run(hour(1, 2), hour(1, 3))
    hook_class, method = storage.upload_method
    mocker.patch.object(hook_class, method, autospec=True, side_effect=ConnectionError("network down"))
    with pytest.raises(Cloud4WiStorageError):
        # In parts, so both stores upload local files (the patched method).
        storage.run(hour(1, 3), hour(1, 4), max_events_per_file=50)
    assert sim.stats["logins"] == sim.stats["logouts"] == 2


def test_the_log_tells_window_pages_events_bytes_objects_and_speed(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    result = storage.run(hour(1, 2), hour(1, 3), page_size=50)
    # Airflow 2 logs through logging, Airflow 3 through structlog to stdout: read both.
    log = caplog.text + capsys.readouterr().out
    assert "[2024-01-01T02:00:00+00:00, 2024-01-01T03:00:00+00:00)" in log
    assert re.search(r"Pulled 120 events of .* in \d+ page\(s\)", log)
    assert f"Exported 120 events ({result['bytes']} bytes)" in log
    assert result["objects"][0] in log
    assert "events/s" in log


# ----------------------------------------------------------------------------- a real task run
@pytest.mark.slow
def test_a_dag_run_exports_its_data_interval_through_the_templated_defaults(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    run_dag: Callable[..., Any],
    default_key_of: Callable[..., str],
    request: pytest.FixtureRequest,
) -> None:
    dag_id = f"cloud4wi_hourly_export_{request.node.callspec.params['storage']}"
    run = run_dag(hourly_export_dag(dag_id, storage), dag_id, hour(1, 3))

    key = default_key_of(hour(1, 2), hour(1, 3))
    expected = list(sim.expected_events(hour(1, 2), hour(1, 3)))
    assert events_of(storage, key) == expected
    result = run.get_task_instance("export").xcom_pull(task_ids="export")
    assert result == {
        "objects": [storage.uri(key)],
        "manifest": storage.uri(key.replace(".jsonl.gz", ".manifest.json")),
        "event_count": len(expected),
        "bytes": len(storage.bucket.read(key)),
        "window_start": "2024-01-01T02:00:00+00:00",
        "window_end": "2024-01-01T03:00:00+00:00",
    }
    visits = list(sim.expected_events(hour(1, 2), hour(1, 3), event_types=["visit", "geo_visit"]))
    assert events_of(storage, "visits/2024-01-01/2.jsonl", compressed=False) == visits


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize("kind", sorted(OPERATORS))
@pytest.mark.parametrize("compression", ["zip", "gz", "GZIP", ""])
def test_unknown_compression_is_refused_at_construction(kind: str, compression: str) -> None:
    operator_class, bucket_param = OPERATORS[kind]
    with pytest.raises(
        ValueError, match=r'compression for file_format="jsonl" must be one of "auto", "gzip", None'
    ):
        operator_class(task_id="export", compression=compression, **{bucket_param: "bucket"})


@pytest.mark.parametrize("kind", sorted(OPERATORS))
@pytest.mark.parametrize("page_size", [0, 10_001, "100"])
def test_page_size_out_of_range_is_refused_at_construction(kind: str, page_size: Any) -> None:
    operator_class, bucket_param = OPERATORS[kind]
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 10000"):
        operator_class(task_id="export", page_size=page_size, **{bucket_param: "bucket"})


@pytest.mark.parametrize("kind", sorted(OPERATORS))
def test_non_positive_max_events_per_file_is_refused_at_construction(kind: str) -> None:
    operator_class, bucket_param = OPERATORS[kind]
    with pytest.raises(ValueError, match="max_events_per_file must be a positive integer"):
        operator_class(task_id="export", max_events_per_file=0, **{bucket_param: "bucket"})


def test_operators_pass_hook_params_to_the_cloud4wi_hook(
    storage: StorageCase, sim: Cloud4WiSimulator
) -> None:
    sim.set_faults(Faults(server_error=1.0, max_consecutive_faults=100))
    with pytest.raises(Exception, match="HTTP 5"):
        storage.run(hour(1, 2), hour(1, 3), hook_params={**FAST_RETRIES, "max_attempts": 2})
    assert sim.stats["faults"]["server_error"] == 2
