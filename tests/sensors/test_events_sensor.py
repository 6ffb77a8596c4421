"""Cloud4WiEventsSensor against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_cloud4wi._compat import AirflowFailException
from airflow_provider_cloud4wi.conditions import CHECK_MAX_ATTEMPTS
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiApiError, Cloud4WiAuthError
from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults
from airflow_provider_cloud4wi.testing.pytest_plugin import SimulatorFactory
from airflow_provider_cloud4wi.triggers.events import Cloud4WiEventsTrigger
from airflow_provider_cloud4wi.windows import ZERO_WIDTH_HELP

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
# An hour of the default dataset: 120 events.
START = dt.datetime(2024, 1, 3, 10, tzinfo=UTC)
END = START + HOUR
NO_CONTEXT: Any = {}


def sensor(**kwargs: Any) -> Cloud4WiEventsSensor:
    arguments: dict[str, Any] = {
        "task_id": "wait_for_events",
        "window_start": START,
        "window_end": END,
        "poke_interval": 0.1,
        "timeout": 30,
        "deferrable": False,
        **kwargs,
    }
    return Cloud4WiEventsSensor(**arguments)


def event_requests(simulator: Cloud4WiSimulator) -> int:
    requests = simulator.stats["requests"]
    return int(requests["organization_events"] + requests["customer_events"])


def api_requests(simulator: Cloud4WiSimulator) -> int:
    return event_requests(simulator) + int(simulator.stats["requests"]["login"])


# ---------------------------------------------------------------------------------------- poke
def test_poke_is_true_when_the_window_holds_the_events(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert sensor(min_events=5).poke(NO_CONTEXT) is True


def test_a_poke_is_one_request_for_min_events_events(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    sensor(min_events=7).execute(NO_CONTEXT)

    # Read after the logout that ends execute: the simulator counts a page once it has sent it.
    assert event_requests(cloud4wi_simulator) == 1
    assert cloud4wi_simulator.stats["events_served"] == 7
    assert cloud4wi_simulator.stats["scrolls_opened"] == 0


def test_poke_is_false_while_the_window_holds_fewer_events_than_awaited(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert sensor(min_events=121).poke(NO_CONTEXT) is False


def test_poke_is_false_for_a_window_the_api_holds_nothing_of(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    after_the_data = cloud4wi_simulator.config.data_end + HOUR
    assert sensor(window_start=after_the_data, window_end=after_the_data + HOUR).poke(NO_CONTEXT) is False


def test_events_published_after_a_poke_are_seen_by_the_next_one(
    cloud4wi_simulator_factory: SimulatorFactory,
    connect: Callable[..., str],
    publish_until: Callable[[Cloud4WiSimulator, dt.datetime], Cloud4WiSimulator],
) -> None:
    half_filled = cloud4wi_simulator_factory(data_end=START + HOUR / 2)
    connect(half_filled)
    waiting = sensor(min_events=100)
    assert waiting.poke(NO_CONTEXT) is False

    publish_until(half_filled, END)

    assert waiting.poke(NO_CONTEXT) is True


def test_poke_sends_no_request_before_the_settle_delay_has_passed(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    years_after_the_window = dt.datetime.now(UTC) - END + dt.timedelta(days=365)

    assert sensor(settle_delay=years_after_the_window).poke(NO_CONTEXT) is False
    assert api_requests(cloud4wi_simulator) == 0


def test_poke_checks_once_the_settle_delay_has_passed(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert sensor(settle_delay=dt.timedelta(days=1)).poke(NO_CONTEXT) is True


def test_transient_faults_outlasting_a_pokes_few_retries_only_make_it_false(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    cloud4wi_simulator.set_faults(Faults(server_error=1.0, max_consecutive_faults=100))

    assert sensor().poke(NO_CONTEXT) is False
    assert cloud4wi_simulator.stats["requests"]["login"] == CHECK_MAX_ATTEMPTS


def test_transient_faults_the_retries_absorb_do_not_stop_the_poke(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    cloud4wi_simulator.set_faults(Faults(rate_limit=1.0, retry_after=0, max_consecutive_faults=1))

    assert sensor().poke(NO_CONTEXT) is True
    assert cloud4wi_simulator.stats["faults"]["rate_limit"] >= 1


def test_a_sensor_under_intermittent_faults_succeeds_without_raising(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    cloud4wi_simulator.set_faults(Faults(server_error=1.0, max_consecutive_faults=2))

    assert sensor(min_events=10).execute(NO_CONTEXT) == 10


# ---------------------------------------------------------------------------------------- failing at once
def test_another_organization_fails_at_once_with_the_api_message(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    other = "0" * 32
    with pytest.raises(Cloud4WiApiError, match="HTTP 403: the token does not grant access") as info:
        sensor(organization_id=other, timeout=3600).execute(NO_CONTEXT)
    assert info.value.http_status == 403
    assert event_requests(cloud4wi_simulator) == 1


def test_an_unknown_customer_fails_at_once_with_the_api_message(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    with pytest.raises(Cloud4WiApiError, match="HTTP 404: customer nobody not found") as info:
        sensor(customer_id="nobody", timeout=3600).execute(NO_CONTEXT)
    assert info.value.http_status == 404


def test_refused_credentials_fail_at_once_with_what_to_check(
    cloud4wi_simulator: Cloud4WiSimulator, connect: Callable[..., str]
) -> None:
    connect(cloud4wi_simulator, password="not-the-secret")

    with pytest.raises(Cloud4WiAuthError, match="HTTP 401: invalid client credentials") as info:
        sensor(timeout=3600).execute(NO_CONTEXT)
    assert "not-the-secret" not in str(info.value)


def test_a_zero_width_window_fails_at_once_with_the_fixes_and_no_request(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    with pytest.raises(AirflowFailException, match="is zero-width") as info:
        sensor(window_start=START, window_end=START, timeout=3600).execute(NO_CONTEXT)
    assert ZERO_WIDTH_HELP in str(info.value)
    assert api_requests(cloud4wi_simulator) == 0


def test_an_unknown_event_type_fails_at_once_without_a_request(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    with pytest.raises(AirflowFailException, match=r"Unknown event type\(s\) \['walk'\]"):
        sensor(event_types=["visit", "walk"]).execute(NO_CONTEXT)
    assert api_requests(cloud4wi_simulator) == 0


def test_a_window_without_timezone_fails_at_once_saying_so(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    with pytest.raises(AirflowFailException, match="has no timezone"):
        sensor(window_start="2024-01-03T10:00:00").execute(NO_CONTEXT)


@pytest.mark.parametrize("min_events", [0, 10_001, True, 2.5])
def test_min_events_outside_what_one_request_can_count_is_refused_when_the_dag_is_parsed(
    min_events: Any,
) -> None:
    with pytest.raises(ValueError, match="min_events must be an integer from 1 to 10000"):
        sensor(min_events=min_events)


def test_a_negative_settle_delay_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="settle_delay must not be negative"):
        sensor(settle_delay=-5)


# ---------------------------------------------------------------------------------------- results
def test_execute_returns_the_events_seen_capped_at_min_events(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert sensor(min_events=42).execute(NO_CONTEXT) == 42


def test_event_types_as_a_comma_separated_string_narrow_the_count(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    visits_and_logins = sum(
        1 for _ in cloud4wi_simulator.expected_events(START, END, event_types=["visit", "login"])
    )

    assert sensor(event_types="visit, login", min_events=10_000).poke(NO_CONTEXT) is False
    assert sensor(event_types="visit, login", min_events=visits_and_logins).poke(NO_CONTEXT) is True


def test_execute_logs_out_when_it_ends(cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str) -> None:
    sensor().execute(NO_CONTEXT)

    assert cloud4wi_simulator.stats["logouts"] == 1


# ---------------------------------------------------------------------------------------- deferral
def test_deferrable_defaults_to_airflows_default_deferrable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert Cloud4WiEventsSensor(task_id="deferred_by_default").deferrable is True

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert Cloud4WiEventsSensor(task_id="not_deferred_by_default").deferrable is False


def test_an_unsettled_window_is_deferred_with_the_sensor_timeout_and_no_request(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    waiting = sensor(deferrable=True, settle_delay=dt.timedelta(days=36_500), timeout=7200, poke_interval=30)

    with pytest.raises(TaskDeferred) as info:
        waiting.execute(NO_CONTEXT)

    deferral = info.value
    assert deferral.method_name == "execute_complete"
    assert deferral.timeout == dt.timedelta(seconds=7200)
    assert isinstance(deferral.trigger, Cloud4WiEventsTrigger)
    assert deferral.trigger.serialize()[1]["poke_interval"] == 30
    assert api_requests(cloud4wi_simulator) == 0


def test_a_deferrable_sensor_whose_events_are_already_there_does_not_defer(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    assert sensor(deferrable=True, min_events=3).execute(NO_CONTEXT) == 3


def test_a_success_event_completes_the_task_with_its_count() -> None:
    assert sensor().execute_complete(NO_CONTEXT, {"status": "success", "count": 9}) == 9


def test_an_error_event_from_the_trigger_fails_the_task_with_the_api_message(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str
) -> None:
    refused = Cloud4WiEventsTrigger(window_start=START, window_end=END, organization_id="0" * 32)
    event = asyncio.run(refused.run().__anext__())

    with pytest.raises(Cloud4WiApiError, match="HTTP 403: the token does not grant access") as info:
        sensor().execute_complete(NO_CONTEXT, event.payload)
    assert info.value.http_status == 403


# ---------------------------------------------------------------------------------------- task runs
def dag_source(dag_id: str, sensor_arguments: str, schedule: str = "HOURLY_INTERVALS") -> str:
    return f"""
import datetime as dt

from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

from airflow_provider_cloud4wi.sensors.events import Cloud4WiEventsSensor

HOURLY_INTERVALS = CronDataIntervalTimetable("0 * * * *", timezone="UTC")
HOURLY_INSTANTS = CronTriggerTimetable("0 * * * *", timezone="UTC")

with DAG(
    "{dag_id}",
    schedule={schedule},
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    default_args={{"retries": 2, "retry_delay": dt.timedelta(seconds=1)}},
):
    Cloud4WiEventsSensor(task_id="wait", poke_interval=30, timeout=60, {sensor_arguments})
"""


def live_window(seconds_to_go: int) -> str:
    """Sensor arguments for a window of the last hour that closes ``seconds_to_go`` from now."""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    end = now + dt.timedelta(seconds=seconds_to_go)
    return f"window_start='{(end - HOUR).isoformat()}', window_end='{end.isoformat()}'"


@pytest.fixture
def live_simulator(
    cloud4wi_simulator_factory: SimulatorFactory, connect: Callable[..., str]
) -> Cloud4WiSimulator:
    """A simulator holding events from two hours ago to an hour from now, behind ``cloud4wi_default``."""
    now = dt.datetime.now(UTC)
    simulator = cloud4wi_simulator_factory(data_start=now - 2 * HOUR, data_end=now + HOUR)
    connect(simulator)
    return simulator


def test_a_task_run_renders_its_data_interval_and_returns_the_count(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str, run_dag: Callable[..., Any]
) -> None:
    run = run_dag(
        dag_source("sensor_poke_mode", "deferrable=False, min_events=50"), "sensor_poke_mode", START
    )

    assert run.state == "success"
    assert run.get_task_instance("wait").xcom_pull(task_ids="wait") == 50


def test_a_deferrable_task_run_sleeps_in_the_trigger_until_the_window_settles(
    live_simulator: Cloud4WiSimulator, run_dag: Callable[..., Any]
) -> None:
    source = dag_source("sensor_deferred", f"deferrable=True, min_events=30, {live_window(2)}")
    started = time.monotonic()

    run = run_dag(source, "sensor_deferred", START)

    assert run.state == "success"
    assert run.get_task_instance("wait").xcom_pull(task_ids="wait") == 30
    # Poking could not finish before the 30 s poke interval that follows a first, unsettled poke;
    # the trigger wakes when the window settles (2 s). The margin absorbs a slow, loaded machine.
    assert time.monotonic() - started < 29
    assert live_simulator.stats["requests"]["organization_events"] == 1


def test_a_deferrable_task_run_refused_by_the_api_fails(
    live_simulator: Cloud4WiSimulator, run_dag: Callable[..., Any]
) -> None:
    other = "0" * 32
    source = dag_source(
        "sensor_deferred_refused", f"deferrable=True, organization_id='{other}', {live_window(1)}"
    )

    run = run_dag(source, "sensor_deferred_refused", START)

    assert run.state == "failed"
    assert live_simulator.stats["requests"]["organization_events"] >= 1


def test_a_task_run_with_zero_width_intervals_fails_without_retries_or_requests(
    cloud4wi_simulator: Cloud4WiSimulator, cloud4wi_conn_id: str, run_dag: Callable[..., Any]
) -> None:
    source = dag_source("sensor_zero_width", "deferrable=False", schedule="HOURLY_INSTANTS")

    run = run_dag(source, "sensor_zero_width", START)

    assert run.state == "failed"
    assert run.get_task_instance("wait").try_number == 1
    assert api_requests(cloud4wi_simulator) == 0
