"""
Fixtures and helpers shared by the tests that run Airflow 3 as separate processes.

The Debian packages (PostgreSQL, Redis, Chromium) are installed once per test run, when absent
(``devtools/system_packages.py``); a test that needs them is skipped, with the reason, only when
they cannot be installed. Servers are started per test and stopped after it, whatever happened.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from devtools import airflow_stack, system_packages
from devtools.airflow_stack import AirflowProcesses, LocalService

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
AWS_REGION = "us-east-1"
HOUR = dt.timedelta(hours=1)


def airflow_major() -> int:
    """The major version of the Airflow installed here."""
    from airflow import __version__

    return int(__version__.split(".")[0])


def require_packages(packages: Sequence[str]) -> None:
    """Install the Debian ``packages`` that are missing, or skip the test saying why that failed."""
    reason = system_packages.ensure_installed(packages)
    if reason is not None:
        pytest.skip(reason)


def require_celery_on_postgres() -> None:
    """Skip, naming what is missing, when this virtualenv cannot run Airflow on Celery and PostgreSQL."""
    if importlib.util.find_spec("asyncpg") is None:
        pytest.skip("Airflow 3 on PostgreSQL needs asyncpg for its async engine (the integration extra).")
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except ImportError as error:
        # celery 5.7 removed celery.backends.database.retry, which the Celery provider 3.26 imports.
        pytest.skip(f"The Celery provider does not import ({error}); the integration extra needs celery<5.7.")


@pytest.fixture(name="postgres")
def postgres_fixture() -> Iterator[LocalService]:
    """A throwaway PostgreSQL cluster with an ``airflow`` database, on a free loopback port."""
    require_packages(system_packages.POSTGRESQL)
    with airflow_stack.postgres_server() as server:
        yield server


@pytest.fixture(name="redis")
def redis_fixture(tmp_path: Path) -> Iterator[LocalService]:
    """A throwaway in-memory Redis on a free loopback port."""
    require_packages(system_packages.REDIS)
    with airflow_stack.redis_server(tmp_path) as server:
        yield server


def example_connections(simulator: Cloud4WiSimulator, moto_url: str, bucket: str) -> dict[str, str]:
    """The example DAGs' connections and bucket, pointed at the simulator and moto, as environment."""
    config = simulator.config
    return {
        "AIRFLOW_CONN_CLOUD4WI_DEFAULT": json.dumps(
            {
                "conn_type": "cloud4wi",
                "host": simulator.url,
                "login": config.client_key,
                "password": config.client_secret,
                "extra": {"organization_id": config.organization_id},
            }
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_url, "region_name": AWS_REGION},
            }
        ),
        "AIRFLOW_VAR_CLOUD4WI_S3_BUCKET": bucket,
        "CLOUD4WI_EXAMPLE_START_DATE": "2024-01-01T00:00:00+00:00",
    }


def answers(url: str) -> bool:
    """Whether anything answers HTTP at ``url``, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_until(
    airflow: AirflowProcesses,
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    poll_seconds: float = 1.0,
) -> None:
    """Poll ``ready`` until it holds; fail naming ``what`` when a component dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        airflow.check_alive()
        assert time.monotonic() < deadline, f"Timed out waiting for {what}:\n{airflow.diagnostics()}"
        time.sleep(poll_seconds)


def hour_key(organization_id: str, start: dt.datetime) -> str:
    """The examples' default S3 key for the hour starting at ``start``."""
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start:%Y-%m-%d}/"
        f"events_{start.strftime(stamp)}_{(start + HOUR).strftime(stamp)}.jsonl.gz"
    )
