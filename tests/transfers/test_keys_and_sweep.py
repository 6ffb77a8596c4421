"""The names an export owns and the rule deciding which leftovers a run deletes: no storage involved."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_cloud4wi.transfers.checksums import Checksum, StoredObject
from airflow_provider_cloud4wi.transfers.keys import ExportLayout, ObjectNames, new_run_token, run_identity
from airflow_provider_cloud4wi.transfers.manifest import Manifest, ManifestError, ManifestObject
from airflow_provider_cloud4wi.transfers.sweep import ABANDONED_AFTER, abort_rule, stale_keys

NOW = dt.datetime(2024, 1, 2, 12, tzinfo=dt.timezone.utc)
IDENTITY = run_identity("dag", "export", -1, "bucket", "out/events.jsonl.gz", "window")
OURS = f"{IDENTITY}-aaaaaa"
EARLIER_TRY = f"{IDENTITY}-bbbbbb"
OTHER_TASK = "0123abcd-cccccc"


def layout(*, run: str | None = OURS, split: bool = True, partitioned: bool = False) -> ExportLayout:
    return ExportLayout(
        ObjectNames.from_key("out/events.jsonl.gz"), run, split=split, partitioned=partitioned
    )


def stored(key: str, age: dt.timedelta = dt.timedelta(minutes=5)) -> StoredObject:
    return StoredObject(key, NOW - age)


def manifest_listing(*keys: str) -> Manifest:
    objects = [ManifestObject(f"s3://b/{key}", key, None, 1, 1, Checksum("SHA256", "x")) for key in keys]
    return Manifest(
        run=EARLIER_TRY,
        provider_version="0",
        organization_id="org",
        window_start="2024-01-01T00:00:00+00:00",
        window_end="2024-01-01T01:00:00+00:00",
        event_types=None,
        customer_id=None,
        file_format="jsonl",
        compression="gzip",
        partition_by=None,
        event_count=len(keys),
        bytes=len(keys),
        objects=objects,
    )


# ----------------------------------------------------------------------------- names
def test_a_split_export_names_its_parts_after_the_run() -> None:
    assert layout().keys_for(None, 2) == [
        f"out/events.{OURS}.part-00000.jsonl.gz",
        f"out/events.{OURS}.part-00001.jsonl.gz",
    ]


def test_an_export_of_one_object_stays_at_its_key() -> None:
    assert layout(split=False).keys_for(None, 1) == ["out/events.jsonl.gz"]


def test_a_partitioned_export_puts_each_type_in_an_event_type_level_beside_the_name() -> None:
    assert layout(split=False, partitioned=True).keys_for("visit", 1) == [
        f"out/event_type=visit/events.{OURS}.jsonl.gz"
    ]
    assert layout(partitioned=True).keys_for("login", 1) == [
        f"out/event_type=login/events.{OURS}.part-00000.jsonl.gz"
    ]


def test_without_a_run_token_parts_keep_the_names_of_exports_before_manifests() -> None:
    assert layout(run=None).keys_for(None, 2) == [
        "out/events.part-00000.jsonl.gz",
        "out/events.part-00001.jsonl.gz",
    ]


def test_the_manifest_sits_beside_the_key() -> None:
    assert ObjectNames.from_key("out/events.jsonl.gz").manifest_key == "out/events.manifest.json"
    assert ObjectNames.from_key("out/events.parquet").manifest_key == "out/events.manifest.json"


def test_run_tokens_share_the_identity_and_differ_by_run() -> None:
    first, second = new_run_token(IDENTITY), new_run_token(IDENTITY)
    assert first != second
    assert first.startswith(IDENTITY + "-")
    assert second.startswith(IDENTITY + "-")


@pytest.mark.parametrize(
    ("key", "run"),
    [
        ("out/events.jsonl.gz", None),
        ("out/events.part-00003.jsonl.gz", None),
        (f"out/events.{OTHER_TASK}.part-00000.jsonl.gz", OTHER_TASK),
        (f"out/event_type=visit/events.{OURS}.jsonl.gz", OURS),
    ],
)
def test_the_export_owns_its_key_its_parts_and_its_typed_objects(key: str, run: str | None) -> None:
    owned = layout(partitioned=True).parse(key)
    assert owned is not None
    assert owned.run == run


@pytest.mark.parametrize(
    "key",
    [
        "out/events2.jsonl.gz",
        "out/events.jsonl",
        "out/events.manifest.json",
        "out/events.part-7.jsonl.gz",
        "out/event_type=visit/other.jsonl.gz",
        "out/event_type=a/b/events.jsonl.gz",
        "out/events.0123abcd-cccccc.jsonl.gz.bak",
    ],
)
def test_names_that_only_look_alike_are_not_owned(key: str) -> None:
    assert layout(partitioned=True).parse(key) is None


# ----------------------------------------------------------------------------- what a run deletes
def stale(
    found: list[StoredObject], replaced: Manifest | None = None, written: tuple[str, ...] = ()
) -> list[str]:
    return stale_keys(found, layout=layout(), written=written, replaced=replaced, identity=IDENTITY, now=NOW)


def test_what_the_replaced_manifest_listed_is_deleted() -> None:
    old = f"out/events.{OTHER_TASK}.part-00000.jsonl.gz"
    assert stale([stored(old)], replaced=manifest_listing(old)) == [old]


def test_an_earlier_try_of_the_same_task_is_deleted_even_when_fresh() -> None:
    killed = f"out/events.{EARLIER_TRY}.part-00000.jsonl.gz"
    assert stale([stored(killed)]) == [killed]


def test_a_fresh_object_of_another_task_is_kept() -> None:
    assert stale([stored(f"out/events.{OTHER_TASK}.part-00000.jsonl.gz")]) == []


def test_an_abandoned_object_of_another_task_is_deleted() -> None:
    old = f"out/events.{OTHER_TASK}.part-00000.jsonl.gz"
    assert stale([stored(old, ABANDONED_AFTER + dt.timedelta(minutes=1))]) == [old]


def test_names_without_a_token_are_deleted_when_not_rewritten() -> None:
    assert stale([stored("out/events.jsonl.gz"), stored("out/events.part-00000.jsonl.gz")]) == [
        "out/events.jsonl.gz",
        "out/events.part-00000.jsonl.gz",
    ]


def test_what_this_run_wrote_is_never_stale() -> None:
    mine = f"out/events.{OURS}.part-00000.jsonl.gz"
    assert stale([stored(mine)], replaced=manifest_listing(mine), written=(mine,)) == []


def test_a_replaced_manifest_cannot_make_a_run_delete_outside_its_export() -> None:
    assert stale([], replaced=manifest_listing("elsewhere/precious.jsonl.gz", "out/other.jsonl.gz")) == []


def test_a_run_without_a_task_instance_treats_no_token_as_its_own() -> None:
    earlier = f"out/events.{EARLIER_TRY}.part-00000.jsonl.gz"
    found = [stored(earlier)]
    assert stale_keys(found, layout=layout(), written=(), replaced=None, identity=None, now=NOW) == []


# ----------------------------------------------------------------------------- open uploads
def test_an_upload_left_open_by_an_earlier_try_is_aborted_and_ours_is_not() -> None:
    should_abort = abort_rule(layout(), IDENTITY, NOW)
    assert should_abort(f"out/events.{EARLIER_TRY}.part-00000.jsonl.gz", NOW)
    assert not should_abort(f"out/events.{OURS}.part-00000.jsonl.gz", NOW)


def test_an_upload_to_the_unsplit_key_is_aborted_only_when_it_started_before_the_run() -> None:
    should_abort = abort_rule(layout(), IDENTITY, NOW)
    assert should_abort("out/events.jsonl.gz", NOW - dt.timedelta(seconds=1))
    assert not should_abort("out/events.jsonl.gz", NOW + dt.timedelta(seconds=1))


def test_an_upload_of_another_task_is_aborted_only_when_abandoned() -> None:
    should_abort = abort_rule(layout(), IDENTITY, NOW)
    key = f"out/events.{OTHER_TASK}.part-00000.jsonl.gz"
    assert not should_abort(key, NOW - dt.timedelta(hours=1))
    assert should_abort(key, NOW - ABANDONED_AFTER - dt.timedelta(minutes=1))
    assert not should_abort("elsewhere/events.jsonl.gz", NOW - ABANDONED_AFTER * 2)


# ----------------------------------------------------------------------------- the manifest's form
def test_a_manifest_reads_back_as_written() -> None:
    manifest = manifest_listing("out/events.jsonl.gz")
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"objects": []}', "not a Cloud4Wi export manifest"),
        (b'{"format": "cloud4wi-export-manifest", "version": 99}', "version 99"),
        (b'{"format": "cloud4wi-export-manifest", "version": 1}', "misses or mistypes"),
    ],
)
def test_what_is_not_a_manifest_is_refused_saying_why(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_bytes(data)
