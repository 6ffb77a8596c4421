"""Logins, token renewal, refused tokens and the retry policy, against the in-memory API."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fake_api import WINDOW, FakeApi, hour_of_events, jwt, status

from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError, Cloud4WiAuthError, Cloud4WiTransientError
from airflow_provider_cloud4wi.api.protocol import LOGIN_PATH

Build = Callable[..., EventsClient]


def paths(api: FakeApi) -> list[str]:
    return ["login" if path == LOGIN_PATH else "data" for _, path, _ in api.sent]


def test_a_401_on_a_data_request_gets_one_fresh_login_and_one_repeat(client_for: Build) -> None:
    api = FakeApi(hour_of_events(3), faults={2: status(401)})
    assert len(list(client_for(api).iter_events(*WINDOW))) == 3
    assert paths(api)[:4] == ["login", "data", "login", "data"]


def test_a_401_right_after_a_fresh_login_is_retried_with_the_same_token(client_for: Build) -> None:
    # A node that has not seen the new token yet: the repeat after the login is refused too.
    api = FakeApi(hour_of_events(3), faults={2: status(401), 4: status(401)})
    pull = client_for(api).iter_events(*WINDOW)
    assert len(list(pull)) == 3
    assert paths(api)[:5] == ["login", "data", "login", "data", "data"]
    assert api.logins == 2


def test_a_data_request_refused_after_three_fresh_logins_names_the_role_and_scopes(client_for: Build) -> None:
    api = FakeApi(hour_of_events(3), faults={n: status(401) for n in range(2, 40) if n not in (3, 8, 13)})
    with pytest.raises(Cloud4WiAuthError, match="freshly issued token was refused too; check the key's role"):
        list(client_for(api).iter_events(*WINDOW))
    assert api.logins == 4  # the first login and three fresh ones


def test_a_403_to_a_token_that_is_not_fresh_gets_one_fresh_login(client_for: Build) -> None:
    api = FakeApi(hour_of_events(3), faults={1: status(403)})
    client = client_for(api, token=jwt(time.time() - 10))  # an expired pre-issued token, and a key
    assert len(list(client.iter_events(*WINDOW))) == 3
    assert paths(api)[:3] == ["data", "login", "data"]


def test_a_403_to_a_fresh_token_fails_at_once(client_for: Build) -> None:
    api = FakeApi([], faults={2: status(403, message="forbidden")})
    with pytest.raises(Cloud4WiApiError, match="HTTP 403"):
        list(client_for(api).iter_events(*WINDOW))
    assert paths(api) == ["login", "data"]


def test_a_refused_login_is_final_at_once_and_says_what_to_check(client_for: Build) -> None:
    api = FakeApi([], faults={1: status(401, message="bad secret")})
    with pytest.raises(Cloud4WiAuthError, match=r"connection 'fake' \(HTTP 401: bad secret\). Check the"):
        list(client_for(api).iter_events(*WINDOW))
    assert len(api.sent) == 1


def test_a_refused_pre_issued_token_says_how_to_get_a_new_one(client_for: Build) -> None:
    api = FakeApi([], faults={1: status(401)})
    client = client_for(api, client_key=None, client_secret=None, token=jwt(time.time() + 60))
    with pytest.raises(Cloud4WiAuthError, match="refused the pre-issued token of connection 'fake'"):
        list(client.iter_events(*WINDOW))
    assert api.logins == 0


def test_an_expiring_token_is_renewed_before_a_request_not_after_a_refusal(client_for: Build) -> None:
    api = FakeApi(hour_of_events(9), token_lifetime=0.0)
    assert len(list(client_for(api).iter_events(*WINDOW, page_size=4))) == 9
    assert paths(api) == ["login", "data"] * 4  # three pages and the empty one, each with a new token


def test_rate_limits_and_server_errors_are_retried_and_counted(client_for: Build) -> None:
    api = FakeApi(
        hour_of_events(5), faults={2: status(429, {"Retry-After": "3"}), 3: status(502), 4: status(500)}
    )
    pull = client_for(api).iter_events(*WINDOW)
    assert len(list(pull)) == 5
    assert pull.stats.retries == 3


def test_retries_are_bounded_and_the_last_reason_is_raised(client_for: Build) -> None:
    api = FakeApi(hour_of_events(5), faults={n: status(503) for n in range(2, 20)})
    with pytest.raises(Cloud4WiTransientError, match="HTTP 503"):
        list(client_for(api).iter_events(*WINDOW))
    assert len(api.data_requests()) == 5  # FAST_RETRY allows five attempts


def test_a_forbidden_organization_fails_at_once_naming_it(client_for: Build) -> None:
    api = FakeApi([], faults={2: status(403, message="forbidden")})
    with pytest.raises(
        Cloud4WiApiError, match=r"HTTP 403: forbidden\). Organization id: org1. Check"
    ) as raised:
        list(client_for(api).iter_events(*WINDOW))
    assert raised.value.http_status == 403
    assert len(api.data_requests()) == 1


def test_a_server_message_quoting_the_secret_or_the_token_is_shown_blanked(client_for: Build) -> None:
    api = FakeApi([], faults={2: status(400, message="bad request from key / s3cret-value")})
    with pytest.raises(Cloud4WiApiError) as raised:
        list(client_for(api).iter_events(*WINDOW))
    assert "s3cret-value" not in str(raised.value)
    assert "key / ***" in str(raised.value)


def test_a_redirect_is_refused_naming_its_location(client_for: Build) -> None:
    api = FakeApi([], faults={1: status(307, {"Location": "http://elsewhere.test/login"})})
    with pytest.raises(
        Cloud4WiApiError, match=r"redirect \(HTTP 307, Location: http://elsewhere.test/login\)"
    ):
        list(client_for(api).iter_events(*WINDOW))


def test_logout_revokes_only_a_token_from_a_login(client_for: Build) -> None:
    api = FakeApi([])
    client = client_for(api)
    client.get_token()
    client.logout()
    client.logout()
    assert [path for _, path, _ in api.sent] == [LOGIN_PATH, "/v1/sts/logout"]
