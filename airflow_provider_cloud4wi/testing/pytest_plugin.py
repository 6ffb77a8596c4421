"""Pytest fixtures serving the Cloud4Wi Explore API simulator on an ephemeral local port.

Load the plugin explicitly (it is not registered as an entry point)::

    pytest_plugins = ["airflow_provider_cloud4wi.testing.pytest_plugin"]

``cloud4wi_simulator`` gives a started simulator with the default configuration;
``cloud4wi_simulator_factory`` starts as many as a test needs, each with its own overrides, e.g.
``cloud4wi_simulator_factory(scroll_ttl=0.5, faults=Faults(rate_limit=0.2))`` or
``cloud4wi_simulator_factory(faults=Faults(latency_ms=250, max_concurrent_requests=3))``. Every
simulator started by a fixture is stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from airflow_provider_cloud4wi.testing.simulator import Cloud4WiSimulator, SimulatorConfig

__all__ = ["SimulatorFactory", "cloud4wi_simulator", "cloud4wi_simulator_factory"]


class SimulatorFactory(Protocol):
    """Starts a simulator from an optional base config plus field overrides."""

    def __call__(self, config: SimulatorConfig | None = None, /, **overrides: Any) -> Cloud4WiSimulator: ...


@pytest.fixture
def cloud4wi_simulator() -> Iterator[Cloud4WiSimulator]:
    """A started simulator with the default configuration, stopped after the test."""
    with Cloud4WiSimulator() as simulator:
        yield simulator


@pytest.fixture
def cloud4wi_simulator_factory() -> Iterator[SimulatorFactory]:
    """A callable starting simulators with config overrides; all of them are stopped at teardown."""
    started: list[Cloud4WiSimulator] = []

    def start(config: SimulatorConfig | None = None, /, **overrides: Any) -> Cloud4WiSimulator:
        simulator = Cloud4WiSimulator(config, **overrides).start()
        started.append(simulator)
        return simulator

    try:
        yield start
    finally:
        for simulator in reversed(started):
            simulator.stop()
