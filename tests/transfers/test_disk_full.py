"""The local disk fills up while a run writes its files: a clear error, nothing uploaded, nothing left behind.

The full disk is real: a 1 MiB tmpfs mounted for the test (which needs root; the test is skipped,
saying so, otherwise), and a window whose uncompressed export is larger than that.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transfer_helpers import StorageCase, decode_lines

from airflow_provider_cloud4wi.tempfiles import Cloud4WiLocalDiskError
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

UTC = dt.timezone.utc
#: One day of the simulator's data, about 1.6 MB as plain JSON Lines: more than the disk holds.
WINDOW = (dt.datetime(2024, 1, 2, tzinfo=UTC), dt.datetime(2024, 1, 3, tzinfo=UTC))
#: An export written to local files on both stores (one unpartitioned JSON Lines object
#: goes up while it is written and needs no local disk: see the last test).
PLAIN: dict[str, Any] = {"compression": None, "partition_by": "event_type"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 1 MiB tmpfs of its own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"could not mount a small tmpfs to fill up: {mounted.stderr.strip() or mounted.returncode}"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_full_local_disk_fails_with_an_error_naming_the_directory_and_how_to_change_it(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path
) -> None:
    with pytest.raises(Cloud4WiLocalDiskError) as raised:
        storage.run(*WINDOW, local_temp_dir=str(small_disk), **PLAIN)

    message = str(raised.value)
    assert str(small_disk) in message
    assert "local disk is full" in message
    assert "local_temp_dir" in message
    assert "TMPDIR" in message


def test_a_full_local_disk_uploads_nothing_and_leaves_the_earlier_export_as_it_was(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path
) -> None:
    storage.run(*WINDOW, **PLAIN)
    before = storage.snapshot()

    with pytest.raises(Cloud4WiLocalDiskError):
        storage.run(*WINDOW, local_temp_dir=str(small_disk), **PLAIN)

    assert storage.snapshot() == before


def test_a_full_local_disk_leaves_nothing_behind_in_the_directory(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path
) -> None:
    with pytest.raises(Cloud4WiLocalDiskError):
        storage.run(*WINDOW, local_temp_dir=str(small_disk), **PLAIN)

    assert os.listdir(small_disk) == []
    assert storage.object_names() == []


def test_a_split_export_whose_parts_each_fit_needs_room_for_one_part_only(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path
) -> None:
    # Parts of 500 events, about 280 kB each: the window does not fit on the disk, a part does.
    result = storage.run(*WINDOW, local_temp_dir=str(small_disk), max_events_per_file=500, compression=None)

    assert result["event_count"] == sim.count_events(*WINDOW)
    assert len(result["objects"]) == 6
    assert os.listdir(small_disk) == []


def test_a_full_system_temporary_directory_names_it_too(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))

    with pytest.raises(Cloud4WiLocalDiskError) as raised:
        storage.run(*WINDOW, **PLAIN)

    assert str(small_disk) in str(raised.value)
    assert os.listdir(small_disk) == []


def test_one_json_lines_object_needs_no_local_disk(
    storage: StorageCase, sim: Cloud4WiSimulator, small_disk: Path
) -> None:
    result = storage.run(*WINDOW, local_temp_dir=str(small_disk), compression=None)

    expected = list(sim.expected_events(*WINDOW))
    assert result["event_count"] == len(expected) > 2_000
    assert result["bytes"] > 1024 * 1024  # more than the disk could hold
    key = result["objects"][0].removeprefix(storage.uri(""))
    assert decode_lines(storage.bucket.read(key), compressed=False) == expected
    assert os.listdir(small_disk) == []
