"""Tools of the crash and concurrency tests: a stalling relay in front of storage, a bucket watcher, waits.

Nothing here knows the operator under test: the relay forwards bytes, the watcher reads the bucket
through the test's own clients, and the DAG runs are real ``airflow dags test`` processes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage_servers import BucketView

from airflow_provider_cloud4wi.transfers.keys import MANIFEST_SUFFIX
from airflow_provider_cloud4wi.transfers.manifest import Manifest

#: How long a state a test waits for may take on a loaded machine; a wait never asserts speed.
PATIENCE = 240.0
#: The prefix of this provider's local temporary directories.
TEMP_DIR_PREFIX = "cloud4wi-events-"


def wait_for(condition: Callable[[], Any], what: str, *, timeout: float = PATIENCE) -> Any:
    """Poll ``condition`` until it returns something true, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def leftover_dirs(root: Path) -> list[Path]:
    """This provider's local temporary directories directly inside ``root``."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.name.startswith(TEMP_DIR_PREFIX))


def age_tree(path: Path, hours: float) -> None:
    """Make ``path`` and everything in it look untouched for ``hours`` (as a run killed long ago left it)."""
    then = time.time() - hours * 3600
    for item in sorted(path.rglob("*"), reverse=True):
        os.utime(item, (then, then), follow_symlinks=False)
    os.utime(path, (then, then), follow_symlinks=False)


def check_complete(key: str, data: bytes) -> None:
    """
    Raise unless ``data`` is a whole object of an export: a manifest that parses, or gzip'd JSON
    Lines that decompress to the end (a truncated gzip stream raises) with one document per line.
    """
    if key.endswith(MANIFEST_SUFFIX):
        Manifest.from_bytes(data)
        return
    text = gzip.decompress(data) if key.endswith(".gz") else data
    for line in text.decode("utf-8").splitlines():
        json.loads(line)
    if text and not text.endswith(b"\n"):
        raise ValueError(f"{key} does not end with a whole line")


@dataclass
class BucketWatcher:
    """
    Lists and reads a bucket over and over while a run is under way, checking each object it sees.

    ``failures`` collects the objects that were visible but not complete (``check_complete``);
    ``seen`` every object name seen at least once.
    """

    bucket: BucketView
    seen: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)
    _checked: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _pass(self) -> None:
        try:
            keys = self.bucket.keys()
        except Exception:  # the store is busy; the next pass lists again
            return
        for key in keys:
            self.seen.add(key)
            if key in self._checked:
                continue
            try:
                data = self.bucket.read(key)
            except Exception:  # deleted since it was listed
                continue
            try:
                check_complete(key, data)
            except Exception as err:
                self.failures.append((key, f"{type(err).__name__}: {err} ({len(data)} bytes)"))
            self._checked.add(key)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._pass()
            self._stop.wait(0.05)

    def __enter__(self) -> BucketWatcher:
        self._thread = threading.Thread(target=self._loop, name="bucket-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._pass()


class StallingRelay:
    """
    A TCP relay on 127.0.0.1 in front of a storage server, which stops forwarding mid-request.

    Until :meth:`stall_after` is reached it forwards both ways untouched. Once the client has sent
    ``limit`` bytes in all, it forwards nothing more from any client (the bytes are read and
    dropped, so the request being sent is cut short mid-body and no reply ever comes) and sets
    :attr:`stalled`. When a client goes away (killed), its connection to the server is closed, so
    the server sees a request that never completed.
    """

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._forwarded = 0
        self._limit: int | None = None
        self._sockets: list[socket.socket] = []
        self._closed = False
        self.stalled = threading.Event()
        threading.Thread(target=self._accept, name="stalling-relay", daemon=True).start()

    @property
    def url(self) -> str:
        """The relay's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def forwarded(self) -> int:
        """The bytes forwarded from clients to the server so far."""
        with self._lock:
            return self._forwarded

    def stall_after(self, limit: int | None) -> None:
        """Stop forwarding client bytes once ``limit`` have been forwarded in all (None: never)."""
        with self._lock:
            self._limit = limit

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _allowance(self, size: int) -> int:
        with self._lock:
            if self._limit is None:
                self._forwarded += size
                return size
            allowed = max(0, min(size, self._limit - self._forwarded))
            self._forwarded += allowed
            if allowed < size:
                self.stalled.set()
            return allowed

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = client.recv(65536)
                if not data:
                    break
                allowed = self._allowance(len(data))
                if allowed:
                    upstream.sendall(data[:allowed])
        for sock in (upstream, client):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@dataclass
class DagProcess:
    """An ``airflow dags test`` process started in a session of its own; its output goes to ``log``."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the run printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the run and every process it started (its own process group), and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=120)

    def wait(self, timeout: float = PATIENCE) -> int:
        """Wait for the run to end by itself; return its exit status."""
        return self.process.wait(timeout=timeout)


def start_dags_test(
    dags: Path, source: str, dag_id: str, logical_date: dt.datetime, env: dict[str, str], log: Path
) -> DagProcess:
    """Write the DAG into the DAGs folder and start ``airflow dags test`` on it, without waiting."""
    dags.mkdir(exist_ok=True)
    (dags / f"{dag_id}.py").write_text(source)
    airflow = str(Path(sys.executable).with_name("airflow"))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [airflow, "dags", "test", dag_id, logical_date.isoformat()],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return DagProcess(process, log)


@contextlib.contextmanager
def relay_to(target_url: str) -> Iterator[StallingRelay]:
    """A :class:`StallingRelay` in front of ``target_url``, closed afterwards."""
    relay = StallingRelay(target_url)
    try:
        yield relay
    finally:
        relay.close()


def export_dag(
    dag_id: str,
    operator_class: type,
    bucket_param: str,
    bucket: str,
    window: tuple[dt.datetime, dt.datetime],
    **params: Any,
) -> str:
    """The source of an unscheduled DAG with one export task, ``export``, of a fixed window."""
    arguments = "".join(f"        {name}={value!r},\n" for name, value in params.items())
    return f'''
import datetime as dt

from airflow.providers.common.compat.sdk import DAG

from {operator_class.__module__} import {operator_class.__name__}

with DAG(
    dag_id="{dag_id}",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    {operator_class.__name__}(
        task_id="export",
        {bucket_param}="{bucket}",
        window_start="{window[0].isoformat()}",
        window_end="{window[1].isoformat()}",
        retries=0,
{arguments}    )
'''
