"""Fixtures for the trigger tests: a connection to any simulator, and events published late."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from airflow_provider_cloud4wi.testing.pytest_plugin import SimulatorFactory


@pytest.fixture
def connect(set_connection: Callable[..., str]) -> Callable[..., str]:
    """Point connection ``cloud4wi_default`` at a simulator (``fields`` override); returns the conn id."""

    def define(simulator: Cloud4WiSimulator, **fields: object) -> str:
        config = simulator.config
        conn_fields: dict[str, object] = {
            "host": simulator.url,
            "login": config.client_key,
            "password": config.client_secret,
            "extra": {"organization_id": config.organization_id},
            **fields,
        }
        return set_connection("cloud4wi_default", "cloud4wi", **conn_fields)

    return define


@pytest.fixture
def publish_until(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> Callable[[Cloud4WiSimulator, dt.datetime], Cloud4WiSimulator]:
    """
    Make events up to a new ``data_end`` appear at the same address, as if the API had caught up.

    The simulator's data range is fixed while it runs, so it is replaced by one with the same
    configuration on the same port: clients keep their URL (and their token, when the
    configuration sets ``jwt_secret``).
    """

    def publish(simulator: Cloud4WiSimulator, data_end: dt.datetime) -> Cloud4WiSimulator:
        port = simulator.port
        simulator.stop()
        return cloud4wi_simulator_factory(simulator.config, port=port, data_end=data_end)

    return publish
