"""Cloud4WiEventsTrigger run in an event loop against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_cloud4wi.conditions import CHECK_MAX_ATTEMPTS
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults
from airflow_provider_cloud4wi.testing.pytest_plugin import SimulatorFactory
from airflow_provider_cloud4wi.triggers.events import Cloud4WiEventsTrigger
from airflow_provider_cloud4wi.windows import ZERO_WIDTH_HELP

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
# An hour of the default dataset: 120 events.
START = dt.datetime(2024, 1, 3, 10, tzinfo=UTC)
END = START + HOUR
PATIENCE_SECONDS = 20.0


def trigger(**kwargs: Any) -> Cloud4WiEventsTrigger:
    arguments: dict[str, Any] = {
        "window_start": START.isoformat(),
        "window_end": END.isoformat(),
        "poke_interval": 0.05,
        **kwargs,
    }
    return Cloud4WiEventsTrigger(**arguments)


async def first_payload(waiting: Cloud4WiEventsTrigger) -> dict[str, Any]:
    async for event in waiting.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def run_to_first_payload(waiting: Cloud4WiEventsTrigger) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(first_payload(waiting), PATIENCE_SECONDS))


def settle_delay_ending_in(seconds: float) -> float:
    """A settle delay that makes the test window settle ``seconds`` from now."""
    return (dt.datetime.now(UTC) - END).total_seconds() + seconds


# ---------------------------------------------------------------------------------------- outcomes
def test_the_trigger_fires_success_with_the_count_when_the_events_are_there(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert run_to_first_payload(trigger(min_events=25)) == {"status": "success", "count": 25}


def test_the_trigger_fires_an_error_with_the_api_message_when_refused(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    payload = run_to_first_payload(trigger(organization_id="0" * 32))

    assert payload["status"] == "error"
    assert payload["http_status"] == 403
    assert "HTTP 403: the token does not grant access to organization 00000000" in payload["message"]


def test_the_trigger_fires_an_error_for_a_connection_without_organization(
    cloud4wi_simulator: Cloud4WiSimulator, connect: Callable[..., str]
) -> None:
    connect(cloud4wi_simulator, extra={})

    payload = run_to_first_payload(trigger())

    assert payload["status"] == "error"
    assert "No organization id" in payload["message"]


def test_the_trigger_fires_an_error_for_a_zero_width_window_without_a_request(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    payload = run_to_first_payload(trigger(window_end=START.isoformat()))

    assert payload["status"] == "error"
    assert ZERO_WIDTH_HELP in payload["message"]
    assert cloud4wi_simulator.stats["requests"]["login"] == 0


# ---------------------------------------------------------------------------------------- waiting
def test_the_trigger_keeps_checking_until_late_events_arrive(
    cloud4wi_simulator_factory: SimulatorFactory,
    connect: Callable[..., str],
    publish_until: Callable[[Cloud4WiSimulator, dt.datetime], Cloud4WiSimulator],
) -> None:
    half_filled = cloud4wi_simulator_factory(
        data_end=START + HOUR / 2, jwt_secret="the same signing key before and after"
    )
    connect(half_filled)

    def publish_after_an_unsatisfied_check() -> None:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while half_filled.stats["requests"]["organization_events"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        publish_until(half_filled, END)

    publisher = threading.Thread(target=publish_after_an_unsatisfied_check)
    publisher.start()
    try:
        payload = run_to_first_payload(trigger(min_events=100, poke_interval=0.1))
    finally:
        publisher.join()

    assert payload == {"status": "success", "count": 100}
    assert half_filled.stats["requests"]["organization_events"] >= 1


def test_the_trigger_sleeps_until_the_settle_time_then_checks_once(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    started = time.monotonic()

    payload = run_to_first_payload(trigger(settle_delay=settle_delay_ending_in(1.5), poke_interval=3600))

    assert payload["status"] == "success"
    assert time.monotonic() - started >= 1.4
    assert cloud4wi_simulator.stats["requests"]["organization_events"] == 1


def test_transient_faults_outlasting_a_check_do_not_end_the_trigger(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    cloud4wi_simulator.set_faults(
        Faults(rate_limit=1.0, retry_after=0, max_consecutive_faults=CHECK_MAX_ATTEMPTS)
    )

    assert run_to_first_payload(trigger(min_events=3))["status"] == "success"
    # A first check spent all its attempts on failed logins; later checks went on.
    assert cloud4wi_simulator.stats["requests"]["login"] > CHECK_MAX_ATTEMPTS


def test_the_event_loop_keeps_running_while_a_check_waits_for_the_api(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    latency = 1.5
    # First-time imports and the connection lookup hold the GIL for a while on a loaded machine:
    # get them done before the clock, so the stall measured is the API wait alone.
    assert Cloud4WiHook(cloud4wi_conn_id).count_events(START, END) == 1
    cloud4wi_simulator.set_faults(Faults(latency_ms=latency * 1000))

    async def run_with_ticker() -> tuple[dict[str, Any], float, float]:
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)  # the first tick, before the trigger starts
        started = time.monotonic()
        payload = await first_payload(trigger())
        elapsed = time.monotonic() - started
        ticks.append(time.monotonic())
        ticker.cancel()
        longest_stall = max(later - earlier for earlier, later in itertools.pairwise(ticks))
        return payload, longest_stall, elapsed

    payload, longest_stall, elapsed = asyncio.run(asyncio.wait_for(run_with_ticker(), PATIENCE_SECONDS))

    assert payload["status"] == "success"
    assert cloud4wi_simulator.stats["requests"]["login"] == 2
    # A blocking check would stall the loop for the whole check (a login and a count, each as slow
    # as the latency); a thread leaves it ticking. Compared with the check's own duration, so a
    # loaded machine that slows everything does not make the test fail.
    assert elapsed >= 2 * latency
    assert longest_stall < elapsed / 2


# ---------------------------------------------------------------------------------------- serialization
def test_serialize_names_the_class_and_every_argument() -> None:
    waiting = Cloud4WiEventsTrigger(
        cloud4wi_conn_id="c4w",
        window_start=START,
        window_end=END.isoformat(),
        organization_id="org",
        event_types=["visit", "login"],
        customer_id="someone",
        min_events=12,
        settle_delay=90,
        poke_interval=30,
    )

    assert waiting.serialize() == (
        "airflow_provider_cloud4wi.triggers.events.Cloud4WiEventsTrigger",
        {
            "cloud4wi_conn_id": "c4w",
            "window_start": "2024-01-03T10:00:00+00:00",
            "window_end": "2024-01-03T11:00:00+00:00",
            "organization_id": "org",
            "event_types": ["visit", "login"],
            "customer_id": "someone",
            "min_events": 12,
            "settle_delay": 90.0,
            "poke_interval": 30.0,
        },
    )


def test_a_trigger_rebuilt_from_its_serialized_form_behaves_the_same(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    original = trigger(min_events=40, event_types=["visit", "login"])
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")

    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))

    assert rebuilt.serialize() == (classpath, kwargs)
    assert (
        run_to_first_payload(rebuilt) == run_to_first_payload(original) == {"status": "success", "count": 40}
    )


def test_the_serialized_trigger_carries_no_credential_even_after_logging_in(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    waiting = trigger()
    run_to_first_payload(waiting)

    serialized = json.dumps(waiting.serialize())

    assert cloud4wi_simulator.stats["requests"]["login"] == 1
    assert cloud4wi_simulator.config.client_secret not in serialized
    assert "eyJ" not in serialized  # the start of every JWT
