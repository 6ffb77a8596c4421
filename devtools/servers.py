"""
Local stand-ins as subprocesses: moto's S3 server, the Cloud4Wi API simulator, the GCS emulator.

The tests (``tests/storage_servers.py``), the demo (``demo/run_demo.py``) and the benchmark
(``bench/servers.py``) all start them the same way: on a free port of 127.0.0.1, output to a log
file, ready once the port answers HTTP (any status), and stopped on the way out (SIGTERM, then
SIGKILL after 10 seconds), whatever happened. Each server is a context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class LocalServer:
    """A server this process started: its name, base URL, process and log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def answers_http(url: str) -> bool:
    """True when something answers HTTP at ``url``, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:  # any HTTP status means the server is up
        return True
    except OSError:
        return False


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def stop(process: subprocess.Popen[bytes], *, process_group: bool = False) -> None:
    """Stop ``process`` (or its whole process group): SIGTERM, then SIGKILL after 10 seconds."""
    if process.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if process_group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    send(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def serve(
    name: str,
    command: Sequence[str],
    port: int,
    log_dir: Path,
    *,
    new_session: bool = False,
    poll_seconds: float = 0.1,
    timeout: float = START_TIMEOUT_SECONDS,
) -> Iterator[LocalServer]:
    """
    Run ``command`` (which listens on ``port``) until that port answers HTTP; stop it afterwards.

    Its output goes to ``log_dir/<name>.log``. With ``new_session`` it runs in a process group of
    its own (a Ctrl-C in the terminal does not reach it) and the whole group is stopped.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    url = f"http://{HOST}:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
        )
    try:
        deadline = time.monotonic() + timeout
        while not answers_http(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not start on port {port} ({' '.join(command)}); "
                    f"its log {log_path} says:\n{tail(log_path)}"
                )
            time.sleep(poll_seconds)
        yield LocalServer(name=name, url=url, process=process, log_path=log_path)
    finally:
        stop(process, process_group=new_session)


def venv_script(name: str) -> str:
    """The console script ``name`` next to this Python, else on the PATH."""
    beside_python = Path(sys.executable).with_name(name)
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed in this environment.")
    return found


def moto_server(
    log_dir: Path, *, name: str = "moto", new_session: bool = False, poll_seconds: float = 0.1
) -> contextlib.AbstractContextManager[LocalServer]:
    """moto's standalone server (S3 and the rest of AWS), in memory."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return serve(name, command, port, log_dir, new_session=new_session, poll_seconds=poll_seconds)


def cloud4wi_simulator(
    log_dir: Path,
    *arguments: str,
    name: str = "cloud4wi-simulator",
    new_session: bool = False,
    poll_seconds: float = 0.1,
) -> contextlib.AbstractContextManager[LocalServer]:
    """The Cloud4Wi API simulator's server; ``arguments`` are more of its command-line options."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "airflow_provider_cloud4wi.testing.simulator",
        "--host",
        HOST,
        "--port",
        str(port),
        *arguments,
    ]
    return serve(name, command, port, log_dir, new_session=new_session, poll_seconds=poll_seconds)


def gcs_emulator(
    log_dir: Path, *, name: str = "gcs", new_session: bool = False, poll_seconds: float = 0.1
) -> contextlib.AbstractContextManager[LocalServer]:
    """The gcp-storage-emulator, in memory."""
    port = free_port()
    command = [
        venv_script("gcp-storage-emulator"),
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]
    return serve(name, command, port, log_dir, new_session=new_session, poll_seconds=poll_seconds)
