"""A task killed outright (SIGKILL) mid-pull or mid-upload, then re-run: one complete copy, nothing left over.

Every killed run is a real ``airflow dags test`` process, killed with its whole process group; the
re-run is the same task of the same DAG on the same window, as Airflow's retry or a cleared task
would be. The bucket is read with the test's own clients, never through the operator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from crash_tools import BucketWatcher, DagProcess, age_tree, export_dag, leftover_dirs, relay_to, wait_for
from storage_servers import stored_manifest
from transfer_helpers import FAST_RETRIES, StorageCase, decode_lines, file_checksum_of

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.testing.simulator import Faults
from airflow_provider_cloud4wi.transfers.keys import MANIFEST_SUFFIX, ObjectNames

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
#: One day of the simulator's data: 2880 events, 15 parts of at most 200.
WINDOW = (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 3, tzinfo=UTC))
LOGICAL_DATE = dt.datetime(2024, 1, 3, tzinfo=UTC)
SPLIT = 200
#: A slow, sequential pull of many pages, so a run is still pulling when it is killed.
SLOW_PULL = {"page_size": 100, "max_concurrency": 1}
#: The pages of that pull.
PAGES = 29
#: How long a killed run's local directory has been left when the next run starts.
HOURS_AGO = 7
#: The run token in a split export's part names, as a group.
RUN_TOKEN = re.compile(r"\.(?P<run>[0-9a-f]{8}-[0-9a-f]{6})\.part-\d{5}")


def dag_source(dag_id: str, storage: StorageCase, **params: Any) -> str:
    """One export task of the test window, split into parts, with quick retries against the simulator."""
    params = {"max_events_per_file": SPLIT, "hook_params": FAST_RETRIES, **SLOW_PULL, **params}
    return export_dag(
        dag_id, storage.operator_class, storage.bucket_param, storage.bucket.name, WINDOW, **params
    )


def event_requests(sim: Cloud4WiSimulator) -> int:
    """How many event pages the simulator has served."""
    return int(sim.stats["requests"].get("organization_events", 0))


def kill_mid_pull(
    start_dag_run: Callable[..., DagProcess],
    sim: Cloud4WiSimulator,
    source: str,
    dag_id: str,
    temp_root: Path,
    env: dict[str, str],
) -> None:
    """Start the DAG's run, wait until it is pulling and writing local files, and SIGKILL it."""
    sim.set_faults(Faults(latency_ms=400))
    sim.reset_stats()
    run = start_dag_run(source, dag_id, LOGICAL_DATE, env)
    wait_for(
        lambda: (run.process.poll() is not None) or (leftover_dirs(temp_root) and event_requests(sim) >= 3),
        "the run to be pulling into its local files",
    )
    assert run.process.poll() is None, f"the run ended before it could be killed:\n{run.output()}"
    run.kill()
    sim.set_faults(Faults())
    assert event_requests(sim) < PAGES, "the run was killed before its pull ended"


def assert_one_complete_copy(storage: StorageCase, sim: Cloud4WiSimulator, key: str) -> None:
    """The bucket holds the window's export once: its manifest and exactly the objects it lists, complete."""
    manifest = stored_manifest(storage.bucket, key)
    manifest_key = ObjectNames.from_key(key).manifest_key
    assert storage.object_names() == sorted([*manifest.keys, manifest_key])
    events: list[dict[str, Any]] = []
    for item in manifest.objects:
        data = storage.bucket.read(item.key)
        lines = decode_lines(data)
        assert (item.events, item.bytes) == (len(lines), len(data)), item.key
        assert item.checksum == file_checksum_of(data, item.checksum.algorithm), item.key
        assert f".{manifest.run}." in item.key
        events += lines
    assert events == list(sim.expected_events(*WINDOW))
    assert manifest.event_count == len(events)


def rerun(dags_test: Callable[..., Any], source: str, dag_id: str, env: dict[str, str]) -> None:
    """Run the same task again, to the end; it must succeed."""
    done = dags_test(source, dag_id, LOGICAL_DATE, env)
    assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------------------- killed mid-pull
def test_a_run_killed_mid_pull_leaves_the_earlier_export_as_it_was(
    storage: StorageCase, sim: Cloud4WiSimulator, start_dag_run: Callable[..., DagProcess], tmp_path: Path
) -> None:
    storage.run(*WINDOW, max_events_per_file=SPLIT)
    before = storage.snapshot()
    temp = tmp_path / "tmp"
    temp.mkdir()

    kill_mid_pull(
        start_dag_run,
        sim,
        dag_source("crash_pull_untouched", storage),
        "crash_pull_untouched",
        temp,
        {"TMPDIR": str(temp)},
    )

    # A split export uploads each part as soon as it is written, under the run's own names: the
    # killed run may have stored some, which no manifest lists (the re-run removes them).
    after = storage.snapshot()
    assert {key: after.get(key) for key in before} == before
    assert all(RUN_TOKEN.search(key) for key in set(after) - set(before))


def test_the_rerun_of_a_run_killed_mid_pull_holds_exactly_one_complete_copy(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    start_dag_run: Callable[..., DagProcess],
    dags_test: Callable[..., Any],
    default_key_of: Callable[..., str],
    tmp_path: Path,
) -> None:
    storage.run(*WINDOW, max_events_per_file=SPLIT)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    source = dag_source("crash_pull_rerun", storage)
    kill_mid_pull(start_dag_run, sim, source, "crash_pull_rerun", temp, env)

    rerun(dags_test, source, "crash_pull_rerun", env)

    assert_one_complete_copy(storage, sim, default_key_of(*WINDOW))


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
@pytest.mark.parametrize("chosen_by", ["TMPDIR", "local_temp_dir"])
def test_the_rerun_removes_the_local_files_a_run_killed_hours_ago_left(
    chosen_by: str,
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    start_dag_run: Callable[..., DagProcess],
    dags_test: Callable[..., Any],
    tmp_path: Path,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)} if chosen_by == "TMPDIR" else {}
    params = {} if chosen_by == "TMPDIR" else {"local_temp_dir": str(temp)}
    dag_id = f"crash_local_{chosen_by.lower()}"
    source = dag_source(dag_id, storage, **params)
    kill_mid_pull(start_dag_run, sim, source, dag_id, temp, env)
    (killed,) = leftover_dirs(temp)
    age_tree(killed, HOURS_AGO)
    live = temp / "cloud4wi-events-live-run"
    live.mkdir()
    (live / "part-00000.jsonl.gz").write_bytes(b"being written")

    rerun(dags_test, source, dag_id, env)

    assert leftover_dirs(temp) == [live]
    assert (live / "part-00000.jsonl.gz").read_bytes() == b"being written"


# ----------------------------------------------------------------------------- killed mid-upload


@dataclass
class KilledUpload:
    """What a run killed mid-upload left, and what was seen while it ran."""

    source: str
    #: The objects of the export before the killed run started.
    earlier: set[str]
    #: The objects the killed run had stored when it was killed.
    left: set[str]
    watcher: BucketWatcher

    @property
    def run(self) -> str:
        """The killed run's token, read from the names of the objects it stored."""
        (token,) = {RUN_TOKEN.search(key)["run"] for key in self.left}  # type: ignore[index]
        return token


def storage_through(storage: StorageCase, url: str) -> dict[str, str]:
    """The environment that sends a run's storage requests to ``url`` instead of the store."""
    if storage.bucket.scheme == "s3":
        connection = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
        connection["extra"]["endpoint_url"] = url
        return {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}
    return {"STORAGE_EMULATOR_HOST": url}


@pytest.fixture
def storage_url(storage: StorageCase, request: pytest.FixtureRequest) -> str:
    """The address of the store behind ``storage``."""
    server = request.getfixturevalue("moto_server" if storage.bucket.scheme == "s3" else "gcs_emulator")
    return str(server.url)


@pytest.fixture
def kill_mid_upload(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    start_dag_run: Callable[..., DagProcess],
    storage_url: str,
    default_key_of: Callable[..., str],
) -> Callable[[str], KilledUpload]:
    """
    Export the window once (the earlier run), then run the task again through a relay that stalls
    halfway through its uploads, and SIGKILL it there, with the bucket watched all along.
    """

    def kill(dag_id: str) -> KilledUpload:
        earlier = storage.run(*WINDOW, max_events_per_file=SPLIT)
        earlier_keys = set(storage.object_names())
        source = dag_source(dag_id, storage, page_size=1000)
        with relay_to(storage_url) as relay, BucketWatcher(storage.bucket) as watcher:
            relay.stall_after(earlier["bytes"] // 2)
            run = start_dag_run(source, dag_id, LOGICAL_DATE, storage_through(storage, relay.url))
            wait_for(lambda: relay.stalled.is_set() or run.process.poll() is not None, "the upload to stall")
            assert run.process.poll() is None, f"the run ended before it could be killed:\n{run.output()}"
            # Kill at once: a single-threaded store (the GCS emulator) serves nobody while it waits
            # for the rest of the stalled body, so the bucket is read once the run is dead.
            run.kill()
        left = set(storage.object_names()) - earlier_keys
        assert left, "the killed run had stored some of its parts"
        earlier_data = sorted(key for key in earlier_keys if not key.endswith(MANIFEST_SUFFIX))
        committed = stored_manifest(storage.bucket, default_key_of(*WINDOW))
        assert sorted(committed.keys) == earlier_data, "the killed run never committed"
        return KilledUpload(source, earlier_keys, left, watcher)

    return kill


def test_no_partial_object_is_ever_visible_while_a_run_is_killed_mid_upload(
    kill_mid_upload: Callable[[str], KilledUpload],
) -> None:
    killed = kill_mid_upload("crash_upload_visible")

    assert killed.watcher.failures == []


def test_the_rerun_of_a_run_killed_mid_upload_removes_its_parts_and_holds_one_complete_copy(
    storage: StorageCase,
    sim: Cloud4WiSimulator,
    kill_mid_upload: Callable[[str], KilledUpload],
    dags_test: Callable[..., Any],
    default_key_of: Callable[..., str],
) -> None:
    killed = kill_mid_upload("crash_upload_rerun")

    rerun(dags_test, killed.source, "crash_upload_rerun", {})

    assert_one_complete_copy(storage, sim, default_key_of(*WINDOW))
    assert not killed.left & set(storage.object_names())


def open_uploads(storage: StorageCase) -> list[str]:
    """The keys of the multipart uploads open in the S3 bucket."""
    listing = storage.bucket.client.list_multipart_uploads(Bucket=storage.bucket.name)
    return sorted(upload["Key"] for upload in listing.get("Uploads", []))


def open_upload(storage: StorageCase, key: str) -> None:
    """Start a multipart upload at ``key`` and send it one part, as a killed upload leaves it."""
    client, bucket = storage.bucket.client, storage.bucket.name
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    client.upload_part(Bucket=bucket, Key=key, PartNumber=1, UploadId=upload["UploadId"], Body=b"x" * 1024)


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_the_rerun_aborts_the_multipart_uploads_the_killed_run_left_open_and_no_other(
    storage: StorageCase,
    kill_mid_upload: Callable[[str], KilledUpload],
    dags_test: Callable[..., Any],
    default_key_of: Callable[..., str],
) -> None:
    killed = kill_mid_upload("crash_upload_multipart")
    stem = ObjectNames.from_key(default_key_of(*WINDOW)).stem
    # A part of the killed run still uploading when it died (as one past the 8 MB multipart
    # threshold would be), and an upload of another export whose key merely shares the prefix.
    # (An upload of another task's run of this window is kept only while it is under 24 hours
    # old, which moto cannot show: it reports every upload as initiated in 2010.)
    mine, theirs = f"{stem}.{killed.run}.part-00014.jsonl.gz", f"{stem}_by_hand.jsonl.gz"
    for key in (mine, theirs):
        open_upload(storage, key)
    assert set(open_uploads(storage)) >= {mine, theirs}

    rerun(dags_test, killed.source, "crash_upload_multipart", {})

    assert open_uploads(storage) == [theirs]
