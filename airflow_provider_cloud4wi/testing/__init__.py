"""Test helpers for the Cloud4Wi provider: a local simulator of the Explore API.

``Cloud4WiSimulator`` serves deterministic events over real HTTP; ``SimulatorConfig`` sets it up
and ``Faults`` switches error injection on and off at runtime. The pytest fixtures live in
``airflow_provider_cloud4wi.testing.pytest_plugin`` (load it with ``pytest_plugins``).

The names are imported lazily, so that importing this package (or the pytest plugin's module
path) does not start loading the simulator package, its HTTP server and PyJWT until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_cloud4wi.testing.simulator import Cloud4WiSimulator, Faults, SimulatorConfig

__all__ = ["Cloud4WiSimulator", "Faults", "SimulatorConfig"]


def __getattr__(name: str) -> Any:
    """Resolve the public names from :mod:`airflow_provider_cloud4wi.testing.simulator` on first use."""
    if name in __all__:
        module = importlib.import_module("airflow_provider_cloud4wi.testing.simulator")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
