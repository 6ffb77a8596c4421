"""Shared test set-up: a throwaway AIRFLOW_HOME with SQLite, the simulator and connection fixtures."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The dev-server helpers (devtools/, at the repo root) whichever way pytest is started.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

# Airflow reads its configuration when first imported: point it at a private home before that.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cloud4wi-tests-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ.pop("AIRFLOW_CONN_CLOUD4WI_DEFAULT", None)

import pytest  # noqa: E402

pytest_plugins = ["airflow_provider_cloud4wi.testing.pytest_plugin", "storage_servers"]


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The AIRFLOW_HOME every test of this session shares."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata database, for ``dag.test()`` and task runs."""
    from airflow.utils import db

    db.resetdb()
    return airflow_home / "airflow.db"


def connection_uri_env(conn_id: str) -> str:
    """The environment variable that defines connection ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an Airflow connection through the environment, as JSON; returns its conn id."""

    def define(conn_id: str, conn_type: str, **fields: Any) -> str:
        monkeypatch.setenv(connection_uri_env(conn_id), json.dumps({"conn_type": conn_type, **fields}))
        return conn_id

    return define


@pytest.fixture
def connect(set_connection: Callable[..., str]) -> Callable[..., str]:
    """
    Point a Cloud4Wi connection at a simulator; returns the conn id.

    ``conn_id`` defaults to ``cloud4wi_default``; other keyword arguments override the connection's
    fields (``host``, ``login``, ``password``, ``extra``...).
    """

    def define(simulator: Any, conn_id: str = "cloud4wi_default", **fields: Any) -> str:
        config = simulator.config
        conn_fields: dict[str, Any] = {
            "host": simulator.url,
            "login": config.client_key,
            "password": config.client_secret,
            "extra": {"organization_id": config.organization_id},
            **fields,
        }
        return set_connection(conn_id, "cloud4wi", **conn_fields)

    return define


@pytest.fixture
def cloud4wi_conn_id(cloud4wi_simulator: Any, connect: Callable[..., str]) -> str:
    """Connection ``cloud4wi_default`` pointed at a running simulator."""
    return connect(cloud4wi_simulator)


@pytest.fixture
def publish_until(cloud4wi_simulator_factory: Any) -> Callable[[Any, dt.datetime], Any]:
    """
    Make events up to a new ``data_end`` appear at the same address, as if the API had caught up.

    The simulator's data range is fixed while it runs, so it is replaced by one with the same
    configuration on the same port: clients keep their URL (and their token, when the
    configuration sets ``jwt_secret``).
    """

    def publish(simulator: Any, data_end: dt.datetime) -> Any:
        port = simulator.port
        simulator.stop()
        return cloud4wi_simulator_factory(simulator.config, port=port, data_end=data_end)

    return publish


def _airflow_major() -> int:
    from airflow import __version__

    return int(__version__.split(".")[0])


@pytest.fixture
def run_dag(airflow_db: Path, airflow_home: Path) -> Callable[..., Any]:
    """
    Run a DAG through Airflow itself (``dag.test()``) and return the DagRun.

    The DAG's source is written into the DAGs folder first: Airflow 3's ``dag.test()`` syncs the
    DAG bundle from there, so the run uses the serialized DAG as a scheduler would.
    """
    from airflow.models.dagbag import DagBag

    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)

    def run(source: str, dag_id: str, logical_date: Any) -> Any:
        path = dags / f"{dag_id}.py"
        path.write_text(source)
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        dag = bag.get_dag(dag_id)
        date_arg = "logical_date" if _airflow_major() >= 3 else "execution_date"
        return dag.test(**{date_arg: logical_date})

    return run


@pytest.fixture
def log_output(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """
    Everything logged so far, at DEBUG and above, whichever way it went out.

    Airflow 3 sends hook and task logs through structlog to the standard streams, Airflow 2 through
    the logging module: reading only one of them would let a leaked secret slip by.
    """
    import logging

    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def read() -> str:
        out, err = capfd.readouterr()
        seen.append(out + err)
        return caplog.text + "".join(seen)

    return read
