"""The local temporary files of an export: what a killed run left is swept, a full disk is explained."""

from __future__ import annotations

import datetime as dt
import errno
import os
import tempfile
import time
from pathlib import Path

import pytest

from airflow_provider_cloud4wi.tempfiles import (
    Cloud4WiLocalDiskError,
    local_disk_error,
    sweep_stale_temp_dirs,
)

SIX_HOURS = dt.timedelta(hours=6)


def age(path: Path, hours: float) -> None:
    """Set the modification time of ``path`` and everything in it to ``hours`` ago (links untouched)."""
    then = time.time() - hours * 3600
    for item in [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]:
        os.utime(item, (then, then), follow_symlinks=False)


def leftover(root: Path, name: str, *, hours: float, files: int = 2) -> Path:
    """A directory as a killed run leaves it: some part files, all last touched ``hours`` ago."""
    path = root / name
    path.mkdir()
    for index in range(files):
        (path / f"part-{index:05d}.jsonl.gz").write_bytes(b"x" * 10)
    age(path, hours)
    return path


def test_a_directory_of_this_provider_untouched_for_longer_is_removed(tmp_path: Path) -> None:
    old = leftover(tmp_path, "cloud4wi-events-abc123", hours=7)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [old]
    assert not old.exists()


def test_a_parquet_writers_directory_is_removed_too(tmp_path: Path) -> None:
    old = leftover(tmp_path, "cloud4wi-events-parquet-xyz", hours=7)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [old]


def test_a_recent_directory_is_kept(tmp_path: Path) -> None:
    recent = leftover(tmp_path, "cloud4wi-events-abc123", hours=1)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert sorted(p.name for p in recent.iterdir()) == ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]


def test_an_old_directory_with_one_file_still_being_written_is_kept(tmp_path: Path) -> None:
    live = leftover(tmp_path, "cloud4wi-events-live", hours=7)
    (live / "part-00002.jsonl.gz").write_bytes(b"still writing")
    os.utime(live, (time.time() - 8 * 3600,) * 2)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert (live / "part-00000.jsonl.gz").exists()


def test_an_old_directory_with_a_recent_file_deep_inside_is_kept(tmp_path: Path) -> None:
    live = leftover(tmp_path, "cloud4wi-events-deep", hours=7)
    nested = live / "event_type=visit" / "more"
    nested.mkdir(parents=True)
    (nested / "part.jsonl.gz").write_bytes(b"new")
    for directory in (live, live / "event_type=visit", nested):
        os.utime(directory, (time.time() - 8 * 3600,) * 2)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert (nested / "part.jsonl.gz").exists()


def test_an_old_directory_with_nested_directories_is_removed_whole(tmp_path: Path) -> None:
    old = tmp_path / "cloud4wi-events-nested"
    (old / "event_type=visit").mkdir(parents=True)
    (old / "event_type=visit" / "part.jsonl.gz").write_bytes(b"x")
    age(old, 10)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [old]
    assert not old.exists()


def test_directories_of_other_programs_are_never_touched(tmp_path: Path) -> None:
    others = [
        leftover(tmp_path, name, hours=100)
        for name in ("pytest-of-root", "cloud4wi-tests-airflow-home-x", "cloud4wi-eventsX", "tmpabc")
    ]

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert all(path.exists() for path in others)


def test_a_file_named_like_a_directory_of_this_provider_is_left_alone(tmp_path: Path) -> None:
    lookalike = tmp_path / "cloud4wi-events-file"
    lookalike.write_bytes(b"not a directory")
    age(lookalike, 10)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert lookalike.read_bytes() == b"not a directory"


def test_only_directories_directly_inside_are_considered(tmp_path: Path) -> None:
    holder = tmp_path / "some-project"
    holder.mkdir()
    nested = leftover(holder, "cloud4wi-events-nested", hours=10)
    age(holder, 10)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert nested.exists()


def test_a_symlink_named_like_a_leftover_is_not_followed(tmp_path: Path) -> None:
    precious = leftover(tmp_path, "precious-data", hours=100)
    link = tmp_path / "cloud4wi-events-link"
    link.symlink_to(precious, target_is_directory=True)
    os.utime(link, (time.time() - 100 * 3600,) * 2, follow_symlinks=False)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == []
    assert link.is_symlink()
    assert sorted(p.name for p in precious.iterdir()) == ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]


def test_a_symlink_inside_a_leftover_is_removed_but_its_target_is_kept(tmp_path: Path) -> None:
    precious = leftover(tmp_path, "precious-data", hours=100)
    old = leftover(tmp_path, "cloud4wi-events-old", hours=10)
    (old / "outside").symlink_to(precious, target_is_directory=True)
    age(old, 10)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [old]
    assert not old.exists()
    assert sorted(p.name for p in precious.iterdir()) == ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]


def test_a_fresh_symlink_target_does_not_keep_an_old_leftover(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "new").write_bytes(b"new")
    old = leftover(tmp_path, "cloud4wi-events-old", hours=10)
    (old / "link").symlink_to(fresh, target_is_directory=True)
    age(old, 10)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [old]
    assert (fresh / "new").exists()


def test_a_failed_removal_is_skipped_and_the_others_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    stuck = leftover(tmp_path, "cloud4wi-events-aaa-stuck", hours=10)
    removable = leftover(tmp_path, "cloud4wi-events-zzz", hours=10)
    real_rmtree = shutil.rmtree

    def rmtree(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if Path(path) == stuck:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_rmtree(path)

    monkeypatch.setattr(shutil, "rmtree", rmtree)

    assert sweep_stale_temp_dirs(tmp_path, SIX_HOURS) == [removable]
    assert stuck.exists()


def test_a_missing_directory_sweeps_nothing(tmp_path: Path) -> None:
    assert sweep_stale_temp_dirs(tmp_path / "absent", SIX_HOURS) == []


def test_no_directory_means_the_system_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = leftover(tmp_path, "cloud4wi-events-default", hours=7)

    assert sweep_stale_temp_dirs(None, SIX_HOURS) == [old]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EDQUOT, "Disk quota exceeded"),
        (errno.EFBIG, "File too large"),
    ],
)
def test_a_full_disk_is_explained_with_the_directory_and_how_to_change_it(code: int, reason: str) -> None:
    error = local_disk_error(OSError(code, reason), Path("/mnt/small-disk"))

    assert isinstance(error, Cloud4WiLocalDiskError)
    message = str(error)
    assert "/mnt/small-disk" in message
    assert "local disk is full" in message
    assert reason in message
    assert "local_temp_dir" in message
    assert "TMPDIR" in message
    assert error.directory == Path("/mnt/small-disk")
    assert error.errno == code


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOENT, errno.EIO, None])
def test_any_other_os_error_is_not_taken_for_a_full_disk(code: int | None) -> None:
    err = OSError("something else") if code is None else OSError(code, os.strerror(code))

    assert local_disk_error(err, Path("/tmp")) is None


def test_the_disk_error_is_an_airflow_exception_under_airflow() -> None:
    from airflow.exceptions import AirflowException

    error = local_disk_error(OSError(errno.ENOSPC, "No space left on device"), Path("/x"))

    assert isinstance(error, AirflowException)
    assert not isinstance(error, OSError)
