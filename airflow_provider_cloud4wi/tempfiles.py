"""The local temporary files of an export: sweeping what killed runs left, and a full disk explained.

An export writes its local files into a private directory named ``cloud4wi-events-*`` inside the
operator's ``local_temp_dir`` (default: the system's temporary directory, ``TMPDIR``), and removes
it when the run ends, whether it succeeds or fails. A run killed outright (``SIGKILL``, the OOM
killer, a lost worker) cannot: :func:`sweep_stale_temp_dirs` removes such leftovers once nothing
in them has changed for a while. :func:`local_disk_error` turns the ``OSError`` of a full disk
into an error that says where the files were written and how to write them elsewhere.

This module needs nothing of Airflow; its error is an ``AirflowException`` when Airflow is
installed, like the client's errors (:mod:`airflow_provider_cloud4wi.api.errors`).
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from airflow_provider_cloud4wi.api.errors import _ErrorBase

__all__ = ["TEMP_DIR_PREFIX", "Cloud4WiLocalDiskError", "local_disk_error", "sweep_stale_temp_dirs"]

#: The name prefix of every local temporary directory this provider creates.
TEMP_DIR_PREFIX = "cloud4wi-events-"

#: The errors of a disk (or a quota, or a file-size limit) that has no room left.
_DISK_FULL_ERRNOS: frozenset[int] = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code is not None
)


class Cloud4WiLocalDiskError(_ErrorBase):
    """
    The local disk had no room for an export's local files.

    :param message: what happened, where, and how to write the files elsewhere.
    :param directory: the directory the files were written in.
    :param errno: the ``OSError``'s error number (``ENOSPC``, ``EDQUOT`` or ``EFBIG``).
    """

    def __init__(self, message: str, *, directory: Path, errno: int | None) -> None:
        super().__init__(message)
        self.directory = directory
        self.errno = errno


def local_disk_error(err: OSError, directory: Path) -> Cloud4WiLocalDiskError | None:
    """
    Explain an ``OSError`` of a full local disk; None for any other ``OSError``.

    For ``ENOSPC`` (no space left), ``EDQUOT`` (disk quota exceeded) and ``EFBIG`` (file too
    large), the error names ``directory``, says the local disk is full, and how to change where
    the files go: the operator's ``local_temp_dir`` parameter, or the worker's ``TMPDIR``.

    :param err: the error raised while writing the local files.
    :param directory: the directory the files were being written in.
    """
    if err.errno not in _DISK_FULL_ERRNOS:
        return None
    reason = err.strerror or os.strerror(err.errno or 0)
    message = (
        f"The local disk is full: could not write the export's local files in {directory} ({reason}). "
        "An export writes the whole window (compressed) to local files before uploading it. Free some "
        "space there, or write the files elsewhere: give the operator local_temp_dir='/path/with/room', "
        "or set TMPDIR for the Airflow worker."
    )
    return Cloud4WiLocalDiskError(message, directory=directory, errno=err.errno)


def _newest_mtime(path: Path) -> float:
    """The newest modification time of ``path`` and of everything inside it, symlinks not followed."""
    newest = path.lstat().st_mtime
    for root, dirs, files in os.walk(path, followlinks=False, onerror=_raise):
        for name in (*dirs, *files):
            newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _raise(err: OSError) -> None:
    raise err


def sweep_stale_temp_dirs(directory: Path | None, older_than: dt.timedelta) -> list[Path]:
    """
    Remove this provider's local temporary directories that nothing has touched for ``older_than``.

    Only directories named ``cloud4wi-events-*`` directly inside ``directory`` are considered;
    a directory's age is that of the newest modification time of the directory and of everything
    inside it, so a run still writing keeps its files. Symbolic links are never followed (a link
    named like a leftover is left alone). A directory that cannot be examined or removed is
    skipped; this never raises for one of them, nor when ``directory`` does not exist.

    :param directory: where to look; None for the system's temporary directory.
    :param older_than: how long a directory must have been left untouched to be removed.
    :return: the directories removed.
    """
    root = Path(tempfile.gettempdir()) if directory is None else Path(directory)
    cutoff = time.time() - older_than.total_seconds()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    removed: list[Path] = []
    for entry in sorted(entries, key=lambda item: item.name):
        if not entry.name.startswith(TEMP_DIR_PREFIX):
            continue
        path = Path(entry.path)
        try:
            if not stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
                continue
            if _newest_mtime(path) >= cutoff:
                continue
            shutil.rmtree(path)
        except OSError:
            continue
        removed.append(path)
    return removed
