"""
Airflow 3 as a deployment runs it, from local processes: the components, PostgreSQL and Redis.

* ``CELERY_SETTINGS`` / ``celery_environment`` and ``COMMANDS`` are the one description of the
  CeleryExecutor deployment: ``docker-compose.yaml`` sets exactly this environment and runs these
  commands (``tests/test_docker_compose.py`` checks it), and ``tests/test_celery_backfill.py``
  runs them on loopback. Each adds only its own surroundings: the test its home, connections,
  free loopback ports, a hostname per worker (both run on one machine) and no scheduled runs
  besides the backfill; the compose file its volumes, login and paused-at-start DAGs.
* ``AirflowProcesses`` runs ``airflow`` commands and long-running components of one private
  ``AIRFLOW_HOME``, each in its own process group, and stops them all.
* ``postgres_server`` and ``redis_server`` start throwaway servers from the Debian packages
  (``devtools/system_packages.py`` installs them) on free loopback ports and remove them after.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devtools.servers import HOST, free_port, tail
from devtools.system_packages import POSTGRES_BIN

# ---------------------------------------------------------------------------- the one description
POSTGRES_USER = "airflow"
POSTGRES_PASSWORD = "airflow"
POSTGRES_DB = "airflow"
REDIS_DB = 0
#: Slots per Celery worker: the daily DAG's 24 mapped exports run this many at a time on each.
WORKER_CONCURRENCY = 8
#: How many Celery workers the deployment runs.
CELERY_WORKERS = 2

#: The Airflow settings of the Celery deployment that do not depend on where the services run.
CELERY_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__FERNET_KEY": "",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
}

#: The command of each long-running component (arguments of ``airflow``).
COMMANDS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
    "celery-worker": ("celery", "worker"),
}


def celery_environment(*, postgres: str, redis: str, api_server: str) -> dict[str, str]:
    """
    The whole Airflow environment of the Celery deployment, given where its services listen.

    :param postgres: ``host:port`` of PostgreSQL (metadata database and Celery result backend).
    :param redis: ``host:port`` of Redis (the Celery broker).
    :param api_server: ``host:port`` of the api-server, whose execution API the tasks talk to.
    """
    account = f"{POSTGRES_USER}:{POSTGRES_PASSWORD}@{postgres}/{POSTGRES_DB}"
    return {
        **CELERY_SETTINGS,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{account}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{account}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:@{redis}/{REDIS_DB}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{api_server}/execution/",
    }


def hostname_from_environment() -> str:
    """
    ``[core] hostname_callable`` for several workers on one machine: ``CLOUD4WI_WORKER_HOSTNAME``.

    Airflow records this name as each task instance's hostname; the machine's name is the fallback.
    """
    return os.environ.get("CLOUD4WI_WORKER_HOSTNAME") or socket.getfqdn()


HOSTNAME_CALLABLE = f"{__name__}.{hostname_from_environment.__name__}"


# ---------------------------------------------------------------------------- processes
log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 20.0
CLI_TIMEOUT_SECONDS = 300.0


def stop_group(process: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM) -> None:
    """Stop ``process``'s whole process group: ``first``, then SIGKILL after a grace period."""
    for sig in (first, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def _spawn(
    command: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own, its output to ``log_path``."""
    with log_path.open("wb") as out:
        return subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@dataclass
class AirflowProcesses:
    """``airflow`` commands and components of one private home; ``stop`` ends every component."""

    home: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def airflow(self) -> str:
        """The ``airflow`` executable of this virtualenv."""
        return str(Path(sys.executable).with_name("airflow"))

    def log(self, name: str) -> Path:
        """Where the output of a component or command goes."""
        return self.home / f"{name}.out"

    def run(
        self,
        name: str,
        *args: str,
        retry_on: str | None = None,
        retries: int = 0,
        backoff_seconds: float = 2.0,
        done_already: Callable[[], bool] | None = None,
    ) -> None:
        """
        Run an ``airflow`` command to completion; fail with its output when it fails.

        A failure whose output holds ``retry_on`` is retried up to ``retries`` times, backing off
        ``backoff_seconds`` * 2, 4, 8...; each attempt keeps its own log. When ``done_already``
        says a failed attempt's effect was committed anyway, it is not repeated.
        """
        command = f"airflow {' '.join(args)}"
        for attempt in range(retries + 1):
            output = self.log(name if attempt == 0 else f"{name}.retry{attempt}")
            with output.open("wb") as out:
                done = subprocess.run(
                    [self.airflow, *args],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=CLI_TIMEOUT_SECONDS,
                    check=False,
                )
            if done.returncode == 0:
                return
            transient = retry_on is not None and retry_on in output.read_text(errors="replace")
            if not transient or attempt == retries:
                break
            if done_already is not None and done_already():
                log.warning("%s failed on %r but its effect was committed; not retrying", command, retry_on)
                return
            backoff = backoff_seconds * 2**attempt
            log.warning(
                "%s failed with %r (attempt %d of %d); retrying in %.0f s",
                command, retry_on, attempt + 1, retries + 1, backoff,
            )  # fmt: skip
            time.sleep(backoff)
        raise AssertionError(f"{command} failed (attempt {attempt + 1}):\n{tail(output, 4000)}")

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """Start a long-running component; ``env`` adds to (or overrides) the shared environment."""
        self.processes[name] = _spawn([self.airflow, *args], self.log(name), {**self.env, **(env or {})})

    def check_alive(self) -> None:
        """Fail with its output when a component has exited."""
        for name, process in self.processes.items():
            assert process.poll() is None, f"airflow {name} exited:\n{tail(self.log(name), 4000)}"

    def stop(self) -> None:
        """Stop every component's process group (SIGTERM, then SIGKILL), the last started first."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes.values()):
            stop_group(process)

    def diagnostics(self, chars: int = 2500) -> str:
        """The end of every component's output, for a failure message."""
        return "\n".join(f"--- {name}:\n{tail(self.log(name), chars)}" for name in self.processes)


def clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow setting (the tests' own home included)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}


# ---------------------------------------------------------------------------- PostgreSQL, Redis
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class LocalService:
    """A server started here: its name, ``host:port`` address and log file."""

    name: str
    address: str
    log_path: Path

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.address.rsplit(":", 1)[1])


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def _wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start; its log {log} says:\n{tail(log)}")
        time.sleep(0.2)


def _as_postgres_user() -> list[str]:
    """The command prefix that runs PostgreSQL's programs as an account it accepts (never root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _owned_by_postgres_user(directory: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)


def _initdb(data: Path, log_path: Path) -> None:
    command = [
        *_as_postgres_user(),
        f"{POSTGRES_BIN}/initdb",
        "--pgdata", str(data),
        "--username", POSTGRES_USER,
        # A throwaway cluster on loopback: no password checks, no fsync.
        "--auth", "trust",
        "--encoding", "UTF8",
        "--no-sync",
    ]  # fmt: skip
    with log_path.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{tail(log_path)}")


def _create_database(port: int) -> None:
    import psycopg2

    db = psycopg2.connect(host=HOST, port=port, user=POSTGRES_USER, dbname="postgres")
    try:
        db.autocommit = True
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {POSTGRES_DB}")
    finally:
        db.close()


@contextlib.contextmanager
def postgres_server() -> Iterator[LocalService]:
    """A new PostgreSQL cluster with database ``airflow`` on a free loopback port; removed after."""
    # Not under pytest's tmp_path: that is private to root, and the server runs as ``postgres``.
    base = Path(tempfile.mkdtemp(prefix="cloud4wi-postgres-"))
    try:
        _owned_by_postgres_user(base)
        log = base / "postgres.log"
        _initdb(base / "data", base / "initdb.log")
        port = free_port()
        command = [
            *_as_postgres_user(),
            f"{POSTGRES_BIN}/postgres",
            "-D", str(base / "data"),
            "-p", str(port),
            "-c", f"listen_addresses={HOST}",
            "-c", f"unix_socket_directories={base}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "max_connections=300",
        ]  # fmt: skip
        process = _spawn(command, log)
        try:
            _wait_for(process, lambda: _accepts(port), "PostgreSQL", log)
            _wait_for(process, lambda: _creates_database(port), "PostgreSQL", log)
            yield LocalService("postgres", f"{HOST}:{port}", log)
        finally:
            # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
            stop_group(process, signal.SIGINT)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _creates_database(port: int) -> bool:
    import psycopg2

    try:
        _create_database(port)
    except psycopg2.OperationalError:  # still starting up
        return False
    return True


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[LocalService]:
    """A Redis server in memory (no snapshots) on a free loopback port; stopped after."""
    port = free_port()
    log = log_dir / "redis.log"
    command = [
        "redis-server",
        "--port", str(port),
        "--bind", HOST,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(log_dir),
    ]  # fmt: skip
    process = _spawn(command, log)
    try:
        _wait_for(process, lambda: _redis_answers(port), "Redis", log)
        yield LocalService("redis", f"{HOST}:{port}", log)
    finally:
        stop_group(process)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
