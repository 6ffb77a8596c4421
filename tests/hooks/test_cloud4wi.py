"""Cloud4WiHook against the simulator over real HTTP."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_cloud4wi.hooks.cloud4wi import (
    Cloud4WiApiError,
    Cloud4WiAuthError,
    Cloud4WiHook,
    Cloud4WiTransientError,
)
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults

UTC = dt.timezone.utc
DAY_START = dt.datetime(2024, 1, 2, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)

EVERY_FAULT = Faults(
    rate_limit=0.05,
    retry_after=0,
    server_error=0.05,
    connection_reset=0.05,
    truncated_body=0.05,
    lost_reply=0.05,
    spurious_401=0.03,
    duplicates=0.15,
    scroll_expiry=0.05,
    max_consecutive_faults=2,
)


def event_keys(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"]["type"], e["event"]["id"]) for e in events]


def pull(hook: Cloud4WiHook, start: Any, end: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return list(hook.iter_events(start, end, **kwargs))


# ---------------------------------------------------------------------------------------- exactly once
@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_consecutive_hourly_windows_yield_every_event_once_under_every_fault(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    max_concurrency: int,
) -> None:
    sim = cloud4wi_simulator_factory(events_per_hour=300, faults=EVERY_FAULT)
    hook = hook_for(sim)
    pulled: list[dict[str, Any]] = []
    for hour in range(24):
        start = DAY_START + hour * HOUR
        window = pull(hook, start, start + HOUR, page_size=37, max_concurrency=max_concurrency)
        assert window == list(sim.expected_events(start, start + HOUR)), f"window starting {start}"
        pulled.extend(window)
    assert pulled == list(sim.expected_events(DAY_START, DAY_START + 24 * HOUR))
    assert len(set(event_keys(pulled))) == len(pulled) == 24 * 300
    injected = sim.stats["faults"]
    # A sliced pull cuts the window into pieces under a page: continuations, where duplicates and
    # expiring scrolls strike, are the sequential pull's (slices scrolling: test_parallel_pull.py).
    struck = ["rate_limit", "truncated_body"] + (
        ["lost_reply", "duplicates", "scroll_expiry"] if max_concurrency == 1 else []
    )
    assert all(injected[kind] > 0 for kind in struck)


def test_an_event_exactly_on_the_hour_belongs_to_the_window_it_starts(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    boundary = DAY_START + 5 * HOUR
    before = pull(hook, boundary - HOUR, boundary)
    after = pull(hook, boundary, boundary + HOUR)
    on_boundary = [e for e in after if e["when"]["createdAt"] == "2024-01-02T05:00:00Z"]
    assert len(on_boundary) == 3
    assert not [e for e in before if e["when"]["createdAt"] >= "2024-01-02T05:00:00Z"]


def test_windows_with_sub_second_bounds_split_events_without_gap_or_duplicate(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(events_per_hour=3600 * 3)
    hook = hook_for(sim)
    cuts = [DAY_START + dt.timedelta(seconds=s, microseconds=us) for s, us in [(0, 0), (1, 1), (2, 999_999)]]
    cuts += [DAY_START + dt.timedelta(seconds=3, microseconds=500_000), DAY_START + dt.timedelta(seconds=7)]
    windows = [pull(hook, a.isoformat(), b.isoformat()) for a, b in itertools.pairwise(cuts)]
    for (a, b), got in zip(itertools.pairwise(cuts), windows, strict=False):
        assert got == list(sim.expected_events(a, b))
    assert [e for w in windows for e in w] == list(sim.expected_events(cuts[0], cuts[-1]))
    seconds = [sorted({e["when"]["createdAt"][-3:-1] for e in w}) for w in windows]
    assert seconds == [["00", "01"], ["02"], ["03"], ["04", "05", "06"]]


def test_a_window_holding_no_whole_second_sends_no_request(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    start = DAY_START + dt.timedelta(microseconds=100)
    assert pull(hook, start, start + dt.timedelta(microseconds=500_000)) == []
    assert cloud4wi_simulator.stats["requests"]["organization_events"] == 0


# ---------------------------------------------------------------------------------------- paging
def test_events_are_fetched_one_page_at_a_time(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    events = hook.iter_events(DAY_START, DAY_START + 10 * HOUR, page_size=50, max_concurrency=1)
    next(events)
    assert cloud4wi_simulator.stats["pages_served"] == 1
    rest = list(events)
    assert len(rest) + 1 == 10 * 120
    assert cloud4wi_simulator.stats["pages_served"] == 1 + 10 * 120 // 50


def test_scrolls_that_expire_on_every_continuation_still_yield_every_event(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(expire_every_continuation=True))
    hook = hook_for(sim)
    events = hook.iter_events(DAY_START, DAY_START + 4 * HOUR, page_size=25, max_concurrency=1)
    got = list(events)
    assert got == list(sim.expected_events(DAY_START, DAY_START + 4 * HOUR))
    assert events.stats.resumes >= 4 * 120 // 25 - 1


def test_a_scroll_that_times_out_between_pages_is_resumed(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(scroll_ttl=0.2)
    hook = hook_for(sim)
    got = []
    pull = hook.iter_events(DAY_START, DAY_START + 2 * HOUR, page_size=60, max_concurrency=1)
    for index, event in enumerate(pull):
        if index % 60 == 59:
            import time

            time.sleep(0.3)  # the consumer is slow: the scroll expires before the next page
        got.append(event)
    assert got == list(sim.expected_events(DAY_START, DAY_START + 2 * HOUR))
    assert sim.stats["scrolls_expired"] >= 1


def test_duplicates_resent_by_the_server_are_dropped(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(duplicates=1.0, max_consecutive_faults=1000))
    hook = hook_for(sim)
    events = hook.iter_events(DAY_START, DAY_START + 3 * HOUR, page_size=40)
    got = list(events)
    assert got == list(sim.expected_events(DAY_START, DAY_START + 3 * HOUR))
    assert events.stats.duplicates_dropped > 0


def test_a_contacts_events_come_from_the_customer_endpoint_paged_by_time(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    customer = cloud4wi_simulator.customer_ids()[7]
    got = pull(hook, DAY_START, DAY_START + 48 * HOUR, customer_id=customer, page_size=5)
    expected = list(
        cloud4wi_simulator.expected_events(DAY_START, DAY_START + 48 * HOUR, customer_id=customer)
    )
    assert got == expected
    assert len(got) > 5 * 10
    assert {e["customerId"] for e in got} == {customer}
    assert cloud4wi_simulator.stats["requests"]["customer_events"] >= len(got) // 5


def test_event_types_filter_the_pull(cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook) -> None:
    got = pull(hook, DAY_START, DAY_START + 6 * HOUR, event_types=["visit", "geo_visit"])
    expected = list(
        cloud4wi_simulator.expected_events(
            DAY_START, DAY_START + 6 * HOUR, event_types=["visit", "geo_visit"]
        )
    )
    assert got == expected
    assert {e["event"]["type"] for e in got} == {"visit", "geo_visit"}


def test_documents_are_yielded_exactly_as_the_api_sent_them(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    got = pull(hook, DAY_START, DAY_START + 2 * HOUR)
    geo = [e for e in got if e["event"]["type"].startswith("geo_")]
    assert geo
    assert all("organizationId" not in e for e in geo)
    assert any(not e["where"].get("locationName", "x").isascii() for e in got)


# ---------------------------------------------------------------------------------------- auth
@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_a_token_that_expires_mid_pull_is_renewed(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    max_concurrency: int,
) -> None:
    # 1,800 events in pages of 10 are at least 180 replies of 40 ms each: even 4 at a time the
    # pull outlives the 1 s token however fast the machine is.
    sim = cloud4wi_simulator_factory(events_per_hour=300, token_lifetime=1.0, faults=Faults(latency_ms=40))
    hook = hook_for(sim)
    end = DAY_START + 6 * HOUR
    got = pull(hook, DAY_START, end, page_size=10, max_concurrency=max_concurrency)
    assert got == list(sim.expected_events(DAY_START, end))
    assert len(got) == 1800
    assert sim.stats["logins"] >= 2


def test_a_spurious_401_triggers_one_fresh_login(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(spurious_401=0.5, max_consecutive_faults=1))
    hook = hook_for(sim)
    got = pull(hook, DAY_START, DAY_START + 2 * HOUR, page_size=30)
    assert got == list(sim.expected_events(DAY_START, DAY_START + 2 * HOUR))
    assert sim.stats["faults"]["spurious_401"] >= 1
    assert sim.stats["logins"] == 1 + sim.stats["faults"]["spurious_401"]


def test_a_pre_issued_token_is_used_without_logging_in(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(
        cloud4wi_simulator, login=None, password=None, extra={"token": cloud4wi_simulator.issue_token()}
    )
    assert len(pull(hook, DAY_START, DAY_START + HOUR)) == 120
    assert cloud4wi_simulator.stats["logins"] == 0


def test_a_rejected_pre_issued_token_without_credentials_says_what_to_do(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, login=None, password=None, extra={"token": "not-a-jwt"})
    with pytest.raises(Cloud4WiAuthError, match="pre-issued token"):
        pull(hook, DAY_START, DAY_START + HOUR)


def test_a_wrong_client_secret_fails_with_what_to_check(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, password="wrong-secret-value")
    with pytest.raises(Cloud4WiAuthError, match="client secret") as raised:
        pull(hook, DAY_START, DAY_START + HOUR)
    assert "wrong-secret-value" not in str(raised.value)
    assert cloud4wi_simulator.stats["requests"]["login"] == 1


def test_logout_revokes_the_token(cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook) -> None:
    token = hook.get_token()
    hook.logout()
    assert cloud4wi_simulator.stats["logouts"] == 1

    reply = requests.get(
        f"{cloud4wi_simulator.url}/v1/organizations/{cloud4wi_simulator.organization_id}/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert reply.status_code == 401


def test_the_token_and_secret_never_reach_the_logs(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    log_output: Callable[[], str],
) -> None:
    sim = cloud4wi_simulator_factory(faults=EVERY_FAULT)
    hook = hook_for(sim)
    pull(hook, DAY_START, DAY_START + 2 * HOUR, page_size=20)
    token = hook.get_token()
    hook.close()
    logs = log_output()
    assert "retry 1 of" in logs
    assert "Pulled 240 events" in logs
    assert token not in logs
    assert sim.config.client_secret not in logs


def test_the_token_is_handed_to_the_secrets_masker(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, mocker: Any
) -> None:
    masked = mocker.patch("airflow_provider_cloud4wi.hooks.cloud4wi.mask_secret")
    token = hook.get_token()
    masked.assert_any_call(token)
    masked.assert_any_call(cloud4wi_simulator.config.client_secret)


# ---------------------------------------------------------------------------------------- errors
def test_another_organization_is_refused_at_once_with_the_organization_id(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    with pytest.raises(Cloud4WiApiError, match="HTTP 403") as raised:
        pull(hook, DAY_START, DAY_START + HOUR, organization_id="someone-else")
    assert "someone-else" in str(raised.value)
    assert "organization id" in str(raised.value)
    assert cloud4wi_simulator.stats["requests"]["organization_events"] == 1


def test_an_unknown_customer_is_a_404_naming_what_to_check(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 404.*customer id"):
        pull(hook, DAY_START, DAY_START + HOUR, customer_id="nobody")
    assert cloud4wi_simulator.stats["requests"]["customer_events"] == 1


def test_retries_are_bounded_and_the_last_reason_is_raised(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(server_error=1.0, max_consecutive_faults=10_000))
    hook = hook_for(sim, hook_kwargs={"max_attempts": 3})
    with pytest.raises(Cloud4WiTransientError, match="HTTP 50"):
        pull(hook, DAY_START, DAY_START + HOUR)
    assert sim.stats["requests"]["login"] == 3


def test_a_429_retry_waits_what_retry_after_asks(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    log_output: Callable[[], str],
) -> None:
    sim = cloud4wi_simulator_factory(faults=Faults(rate_limit=1.0, retry_after=1, max_consecutive_faults=2))
    hook = hook_for(sim, hook_kwargs={"retry_after_cap": 5.0})
    assert len(pull(hook, DAY_START, DAY_START + HOUR)) == 120
    logs = log_output()
    assert "rate limited (HTTP 429)" in logs
    assert "in 1.0s" in logs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"page_size": 0}, "page_size must be an integer from 1 to 10000"),
        ({"page_size": 10_001}, "page_size must be an integer from 1 to 10000"),
        ({"event_types": ["visit", "teleport"]}, r"Unknown event type\(s\) \['teleport'\]"),
        ({"organization_id": ""}, None),
    ],
)
def test_bad_arguments_fail_before_any_request(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, kwargs: dict[str, Any], message: str | None
) -> None:
    if message is None:  # an empty organization id falls back to the connection's: no error
        assert len(pull(hook, DAY_START, DAY_START + HOUR, **kwargs)) == 120
        return
    with pytest.raises(ValueError, match=message):
        pull(hook, DAY_START, DAY_START + HOUR, **kwargs)
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2024-01-02T02:00:00+00:00", "2024-01-02T01:00:00+00:00", "is before window_start"),
        ("2024-01-02T00:00:00", "2024-01-02T01:00:00+00:00", "has no timezone"),
        (dt.datetime(2024, 1, 2), DAY_START + HOUR, "has no timezone"),
        ("yesterday", "2024-01-02T01:00:00+00:00", "is not an ISO 8601 date-time"),
        ("2024-01-02", "2024-01-02T01:00:00+00:00", "is a date, not a date-time"),
    ],
)
def test_bad_windows_fail_before_any_request(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, start: Any, end: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pull(hook, start, end)
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


def test_a_missing_organization_id_says_where_to_set_it(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, extra={"organization_id": None})
    with pytest.raises(ValueError, match="organization_id"):
        pull(hook, DAY_START, DAY_START + HOUR)
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


# ---------------------------------------------------------------------------------------- connection
def test_plain_http_to_a_remote_host_is_refused_before_any_request(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, host="http://api.example.com")
    with pytest.raises(ValueError, match="allow_insecure_http"):
        pull(hook, DAY_START, DAY_START + HOUR)


def test_plain_http_to_a_remote_host_is_accepted_when_the_extra_allows_it(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(
        cloud4wi_simulator, host="http://api.example.com:8080", extra={"allow_insecure_http": True}
    )
    assert hook.settings.base_url == "http://api.example.com:8080"


def test_a_host_without_scheme_means_https_and_the_port_field_is_used(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, host="explore.example.com", port=8443)
    assert hook.settings.base_url == "https://explore.example.com:8443"


def test_an_empty_host_means_the_public_api(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, host=None)
    assert hook.settings.base_url == "https://explore.cloud4wi.com"


def test_test_connection_reports_success(hook: Cloud4WiHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert "155d60f21dc1938562900a0e201d54f6" in message


def test_test_connection_reports_a_bad_secret_without_raising_or_leaking_it(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    ok, message = hook_for(cloud4wi_simulator, password="bad-secret-123").test_connection()
    assert not ok
    assert "HTTP 401" in message
    assert "bad-secret-123" not in message


def test_the_connection_form_relabels_the_credentials() -> None:
    behaviour = Cloud4WiHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {
        "host": "API base URL",
        "login": "Client key",
        "password": "Client secret",
    }


# ---------------------------------------------------------------------------------------- lines
def test_event_lines_hold_every_event_once_under_every_fault(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(events_per_hour=300, faults=EVERY_FAULT)
    hook = hook_for(sim)
    for hour in range(6):
        start = DAY_START + hour * HOUR
        lines = list(hook.iter_event_lines(start, start + HOUR, page_size=37))
        assert [json.loads(line) for line in lines] == list(sim.expected_events(start, start + HOUR))
        assert all(b"\n" not in line for line in lines)


def test_event_lines_are_the_apis_own_text_of_each_event(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    lines = list(hook.iter_event_lines(DAY_START, DAY_START + HOUR))
    body = requests.get(
        f"{cloud4wi_simulator.url}/v1/organizations/{cloud4wi_simulator.organization_id}/events",
        params={"dateStart": "2024-01-02T00:00:00Z", "dateEnd": "2024-01-02T00:59:59Z", "size": 200},
        headers={"Authorization": f"Bearer {hook.get_token()}"},
        timeout=5,
    ).content
    assert len(lines) == 120
    assert all(line in body for line in lines)


def test_event_lines_are_right_without_msgspec_too(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, mocker: Any
) -> None:
    mocker.patch("airflow_provider_cloud4wi.api.codec.msgspec", None)
    lines = list(hook.iter_event_lines(DAY_START, DAY_START + 2 * HOUR, page_size=50))
    assert [json.loads(line) for line in lines] == list(
        cloud4wi_simulator.expected_events(DAY_START, DAY_START + 2 * HOUR)
    )
