"""A split export uploads each part while the pull goes on, against S3 (moto) and GCS (emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import StorageCase, decode_lines, hour

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiTransientError
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults

WINDOW = (hour(1, 0), hour(1, 12))


class UploadWatch:
    """Wraps the operator's upload to note, at each upload, the pages served and the local files."""

    def __init__(self, storage: StorageCase, sim: Cloud4WiSimulator, temp_root: Path, mocker: Any) -> None:
        self.pages_served: list[int] = []
        self.local_files: list[int] = []
        self.on_upload: list[Any] = []
        operator_class, method = storage.upload_method
        real_upload = getattr(operator_class, method)

        def watched(operator: Any, path: Path, *args: Any, **kwargs: Any) -> None:
            self.pages_served.append(sim.stats["requests"]["organization_events"])
            self.local_files.append(sum(1 for item in temp_root.rglob("*") if item.is_file()))
            for action in self.on_upload:
                action(len(self.pages_served))
            real_upload(operator, path, *args, **kwargs)

        mocker.patch.object(operator_class, method, autospec=True, side_effect=watched)


@pytest.fixture
def watch(storage: StorageCase, sim: Cloud4WiSimulator, temp_root: Path, mocker: Any) -> UploadWatch:
    return UploadWatch(storage, sim, temp_root, mocker)


def test_the_first_parts_are_uploaded_long_before_the_pull_ends(
    storage: StorageCase, sim: Cloud4WiSimulator, watch: UploadWatch
) -> None:
    storage.run(*WINDOW, key="out/events.jsonl.gz", page_size=10, max_events_per_file=20, max_concurrency=1)

    total_pages = sim.stats["requests"]["organization_events"]
    assert watch.pages_served[0] < total_pages / 4
    everything = [event for key in storage.data_names() for event in decode_lines(storage.bucket.read(key))]
    assert everything == list(sim.expected_events(*WINDOW))


def test_the_local_disk_holds_one_part_at_a_time(
    storage: StorageCase, sim: Cloud4WiSimulator, watch: UploadWatch
) -> None:
    storage.run(*WINDOW, key="out/events.jsonl.gz", page_size=10, max_events_per_file=20, max_concurrency=1)

    data_uploads = watch.local_files[:-1]  # the last upload is the manifest's
    assert len(data_uploads) == len(storage.data_names()) > 10
    assert max(data_uploads) == 1


def test_a_partitioned_split_export_holds_at_most_a_part_per_type_on_disk(
    storage: StorageCase, sim: Cloud4WiSimulator, watch: UploadWatch
) -> None:
    storage.run(*WINDOW, key="out/events.jsonl.gz", partition_by="event_type", max_events_per_file=20)

    types = {event["event"]["type"] for event in sim.expected_events(*WINDOW)}
    assert max(watch.local_files) <= len(types)
    assert len(storage.data_names()) > 2 * len(types)


def test_a_pull_failing_after_parts_were_uploaded_leaves_the_previous_export_alone(
    storage: StorageCase, sim: Cloud4WiSimulator, watch: UploadWatch, temp_root: Path
) -> None:
    storage.run(*WINDOW, key="out/events.jsonl.gz", max_events_per_file=500)
    before = storage.snapshot()

    def api_breaks_after_the_second_part(uploads: int) -> None:
        if uploads == len(before) + 2:  # the first run's uploads, then two parts of this one
            sim.set_faults(Faults(server_error=1.0, max_consecutive_faults=1000))

    watch.on_upload.append(api_breaks_after_the_second_part)
    with pytest.raises(Cloud4WiTransientError, match=r"HTTP 5\d\d on GET"):
        storage.run(
            *WINDOW, key="out/events.jsonl.gz", page_size=10, max_events_per_file=20, max_concurrency=1
        )

    assert storage.snapshot() == before
    assert list(temp_root.iterdir()) == []
