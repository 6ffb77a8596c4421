"""Cloud4WiHook against hostile servers and carelessly pasted connection fields."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiApiError, Cloud4WiHook
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator

UTC = dt.timezone.utc
DAY_START = dt.datetime(2024, 1, 2, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


class _Server:
    """A loopback HTTP server answering every request with one canned reply, recording the paths."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.requests: list[str] = []
        self.reply = (status, body, headers or {})
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.requests.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, body, headers = server.reply
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    """Start loopback servers with canned replies; all are stopped at teardown."""
    started: list[_Server] = []

    def start(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> _Server:
        server = _Server(status, body, headers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _hook(set_connection: Callable[..., str], host: str, **fields: Any) -> Cloud4WiHook:
    conn_fields: dict[str, Any] = {
        "host": host,
        "login": "key",
        "password": "the-client-secret",
        "extra": {"organization_id": "org1"},
        **fields,
    }
    conn_id = set_connection("cloud4wi_hostile", "cloud4wi", **conn_fields)
    return Cloud4WiHook(conn_id, max_attempts=2, retry_wait_initial=0.01, retry_wait_max=0.02)


# ---------------------------------------------------------------------------------------- redirects
def test_a_login_redirect_is_not_followed_and_names_the_location(
    serve: Callable[..., _Server], set_connection: Callable[..., str]
) -> None:
    elsewhere = serve(200, b'{"token": "stolen"}')
    redirecting = serve(307, headers={"Location": f"{elsewhere.url}/v1/sts/login/services"})
    hook = _hook(set_connection, redirecting.url)
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 307") as raised:
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    message = str(raised.value)
    assert elsewhere.url in message
    assert "check the connection's host (API base URL)" in message
    assert redirecting.requests == ["/v1/sts/login/services"]
    assert elsewhere.requests == []


def test_a_data_request_redirect_is_not_followed(
    serve: Callable[..., _Server], set_connection: Callable[..., str]
) -> None:
    elsewhere = serve(200, b'{"events": []}')
    redirecting = serve(302, headers={"Location": f"{elsewhere.url}/events"})
    hook = _hook(set_connection, redirecting.url, login=None, password=None, extra={"token": "a.b.c"})
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 302.*Location"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR, organization_id="org1"))
    assert len(redirecting.requests) == 1
    assert elsewhere.requests == []


# ---------------------------------------------------------------------------------------- repr
def test_no_secret_in_the_repr_of_the_hook_its_settings_or_its_token(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook
) -> None:
    assert len(list(hook.iter_events(DAY_START, DAY_START + HOUR))) == 120
    token = hook.get_token()
    secret = cloud4wi_simulator.config.client_secret
    assert hook._token is not None
    for shown in (hook, hook.settings, hook._token):
        for text in (repr(shown), str(shown)):
            assert secret not in text
            assert token not in text


def test_no_pre_issued_token_in_the_repr_of_the_settings(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    token = cloud4wi_simulator.issue_token()
    hook = hook_for(cloud4wi_simulator, login=None, password=None, extra={"token": token})
    assert token not in repr(hook.settings)
    assert token not in str(hook.settings)


# ---------------------------------------------------------------------------------------- pasted credentials
def test_credentials_pasted_with_surrounding_whitespace_work(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    config = cloud4wi_simulator.config
    hook = hook_for(cloud4wi_simulator, login=f" {config.client_key}\t", password=f"{config.client_secret}\n")
    assert len(list(hook.iter_events(DAY_START, DAY_START + HOUR))) == 120
    assert cloud4wi_simulator.stats["logins"] == 1


def test_a_pre_issued_token_pasted_with_a_newline_works(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    token = cloud4wi_simulator.issue_token()
    hook = hook_for(cloud4wi_simulator, login=None, password=None, extra={"token": f"{token}\n"})
    assert len(list(hook.iter_events(DAY_START, DAY_START + HOUR))) == 120
    assert cloud4wi_simulator.stats["logins"] == 0


@pytest.mark.parametrize(
    ("fields", "value", "names"),
    [
        ({"login": None, "password": None, "extra": {"token": "ab cd"}}, "ab cd", "extra 'token'"),
        ({"password": "sec\x00ret"}, "sec\x00ret", "password (client secret)"),
        ({"login": "my\tkey"}, "my\tkey", "login (client key)"),
    ],
)
def test_a_credential_with_inner_whitespace_is_refused_without_quoting_it(
    cloud4wi_simulator: Cloud4WiSimulator,
    hook_for: Callable[..., Cloud4WiHook],
    fields: dict[str, Any],
    value: str,
    names: str,
) -> None:
    hook = hook_for(cloud4wi_simulator, **fields)
    with pytest.raises(ValueError, match="whitespace or a control character") as raised:
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    assert names in str(raised.value)
    assert value not in str(raised.value)
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


def test_a_requests_error_is_reported_by_type_not_by_its_text(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, mocker: Any
) -> None:
    import requests

    leaky = requests.exceptions.InvalidHeader("Invalid header: Authorization: Bearer the-jwt-itself")
    mocker.patch.object(hook.session, "request", side_effect=leaky)
    with pytest.raises(Cloud4WiApiError, match="InvalidHeader") as raised:
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    assert "the-jwt-itself" not in str(raised.value)
    ok, message = hook.test_connection()
    assert not ok
    assert "InvalidHeader" in message
    assert "the-jwt-itself" not in message


# ---------------------------------------------------------------------------------------- ids and filters
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"organization_id": "."}, "organization_id"),
        ({"organization_id": ".."}, "organization_id"),
        ({"organization_id": "../v1/sts/logout"}, "organization_id"),
        ({"organization_id": "org id"}, "organization_id"),
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": ".."}, "customer_id"),
        ({"customer_id": "a/b"}, "customer_id"),
        ({"customer_id": "x?size=1"}, "customer_id"),
    ],
)
def test_ids_that_are_not_ids_are_refused_before_any_request(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} .* is not an id"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR, **kwargs))
    with pytest.raises(ValueError, match=f"{name} .* is not an id"):
        hook.count_events(DAY_START, DAY_START + HOUR, **kwargs)
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


def test_an_organization_id_in_the_connection_is_checked_too(
    cloud4wi_simulator: Cloud4WiSimulator, hook_for: Callable[..., Cloud4WiHook]
) -> None:
    hook = hook_for(cloud4wi_simulator, extra={"organization_id": ".."})
    with pytest.raises(ValueError, match=r"organization_id '\.\.' is not an id"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


def test_the_simulators_ids_are_ids(cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook) -> None:
    customer = cloud4wi_simulator.customer_ids()[3]
    got = list(hook.iter_events(DAY_START, DAY_START + 24 * HOUR, customer_id=customer))
    assert {event["customerId"] for event in got} == {customer}


@pytest.mark.parametrize("event_types", ["", "  ", [" "], [], " , "])
def test_blank_event_types_are_an_error_not_every_type(
    cloud4wi_simulator: Cloud4WiSimulator, hook: Cloud4WiHook, event_types: Any
) -> None:
    with pytest.raises(ValueError, match="give at least one event type, or None for all"):
        list(hook.iter_events(DAY_START, DAY_START + HOUR, event_types=event_types))
    assert sum(cloud4wi_simulator.stats["requests"].values()) == 0


# ---------------------------------------------------------------------------------------- malformed pages
DEEP = b"[" * 5000 + b"]" * 5000
GOOD_EVENT = b'{"event": {"type": "visit", "id": "1"}, "when": {"createdAt": "2024-01-02T00:00:01Z"}}'


@pytest.mark.parametrize("lines", [False, True])
@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"events": [' + GOOD_EVENT + b', 42, "x"]}', "not a JSON object"),
        (b'{"events": [' + DEEP + b"]}", "nested too deeply"),
        (DEEP, "nested too deeply"),
        (b'{"events": [{"a":' * 3000 + b"1" + b"}]" * 3000 + b"}", "nested too deeply"),
        (b'{"events": [' + GOOD_EVENT + b"," + b"[" * 1100 + b"]" * 1100 + b"]}", "nested too deeply"),
        (b"<!DOCTYPE html><html><body>Sign in to the portal</body></html>", "Sign in to the portal"),
    ],
    ids=["non-object-event", "deep-event", "deep-body", "deep-object", "deepish-event", "html"],
)
def test_a_malformed_page_fails_at_once_naming_the_page_and_the_body(
    serve: Callable[..., _Server], set_connection: Callable[..., str], body: bytes, shown: str, lines: bool
) -> None:
    server = serve(200, body, {"Content-Type": "application/json"})
    hook = _hook(set_connection, server.url, login=None, password=None, extra={"token": "a.b.c"})
    pull = hook.iter_event_lines if lines else hook.iter_events
    with pytest.raises(Cloud4WiApiError, match="Events page 1") as raised:
        list(pull(DAY_START, DAY_START + HOUR, organization_id="org1"))
    assert shown in str(raised.value)
    assert len(str(raised.value)) < 600
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------------------- echoes
def test_a_server_message_echoing_the_client_secret_is_redacted(
    serve: Callable[..., _Server], set_connection: Callable[..., str]
) -> None:
    echoing = serve(400, b'{"message": "bad login body: clientSecret=the-client-secret"}')
    hook = _hook(set_connection, echoing.url)
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 400") as raised:
        list(hook.iter_events(DAY_START, DAY_START + HOUR))
    assert "the-client-secret" not in str(raised.value)
    assert "clientSecret=***" in str(raised.value)


def test_a_server_message_echoing_the_token_is_redacted(
    serve: Callable[..., _Server], set_connection: Callable[..., str]
) -> None:
    echoing = serve(403, b'{"message": "token a.b.c is not allowed here"}')
    hook = _hook(set_connection, echoing.url, login=None, password=None, extra={"token": "a.b.c"})
    with pytest.raises(Cloud4WiApiError, match=r"HTTP 403") as raised:
        list(hook.iter_events(DAY_START, DAY_START + HOUR, organization_id="org1"))
    assert "a.b.c" not in str(raised.value)
    assert "token *** is not allowed" in str(raised.value)
