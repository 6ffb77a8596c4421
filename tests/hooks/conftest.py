"""Fixtures for the hook tests: hooks pointed at simulators, with short retry waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

FAST_RETRIES = {"retry_wait_initial": 0.01, "retry_wait_max": 0.05, "retry_after_cap": 0.05}


@pytest.fixture
def hook_for(connect: Callable[..., str]) -> Callable[..., Cloud4WiHook]:
    """Build a hook whose connection points at ``simulator``; ``extra``/``fields`` override the defaults."""
    counter = iter(range(1_000_000))

    def build(
        simulator: Cloud4WiSimulator,
        *,
        extra: dict[str, Any] | None = None,
        hook_kwargs: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Cloud4WiHook:
        extra = {"organization_id": simulator.config.organization_id, **(extra or {})}
        conn_id = connect(simulator, f"cloud4wi_test_{next(counter)}", extra=extra, **fields)
        return Cloud4WiHook(conn_id, **{**FAST_RETRIES, **(hook_kwargs or {})})

    return build


@pytest.fixture
def hook(cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]) -> Cloud4WiHook:
    """A hook for the default simulator."""
    return hook_for(cloud4wi_simulator)
