"""Auth faults real gateways make: 401 bursts, 403 for an expired token, short-lived tokens."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiApiError, Cloud4WiAuthError, Cloud4WiHook
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults

DAY_START = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)

EVERY_FAULT_WITH_AUTH_STORMS = Faults(
    rate_limit=0.03,
    retry_after=0,
    server_error=0.03,
    connection_reset=0.03,
    truncated_body=0.03,
    lost_reply=0.03,
    spurious_401=0.03,
    duplicates=0.1,
    scroll_expiry=0.05,
    unauthorized_burst_rate=0.3,
    expired_token_403=True,
    max_consecutive_faults=2,
)


def test_48_hourly_windows_under_every_fault_and_auth_storms_yield_every_event_once(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(
        events_per_hour=60, token_lifetime=4.0, faults=EVERY_FAULT_WITH_AUTH_STORMS
    )
    hook = hook_for(sim)
    pulled: list[dict[str, Any]] = []
    for hour in range(48):
        start = DAY_START + hour * HOUR
        window = list(hook.iter_events(start, start + HOUR, page_size=13))
        assert window == list(sim.expected_events(start, start + HOUR)), f"window starting {start}"
        pulled.extend(window)
    keys = {(event["event"]["type"], event["event"]["id"]) for event in pulled}
    assert len(keys) == len(pulled) == 48 * 60
    injected = sim.stats["faults"]
    assert injected["unauthorized_burst"] > 0
    assert injected["spurious_401"] > 0


def test_a_token_refused_on_every_data_request_fails_within_20_seconds_naming_role_and_scopes(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(persistent_401=True))
    hook = hook_for(sim, hook_kwargs={"retry_wait_initial": 0.5, "retry_wait_max": 30.0})
    started = time.monotonic()
    with pytest.raises(Cloud4WiAuthError, match="freshly issued token was refused too; check the key's role"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    assert time.monotonic() - started < 20
    assert sim.stats["requests"]["login"] == 4


def test_another_organization_fails_at_once_even_with_auth_storms_on(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(expired_token_403=True))
    hook = hook_for(sim, hook_kwargs={"retry_wait_initial": 0.5, "retry_wait_max": 30.0})
    started = time.monotonic()
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 403.*Organization id: someone-else"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR, organization_id="someone-else"))
    assert time.monotonic() - started < 20
    assert sim.stats["requests"]["organization_events"] == 1
