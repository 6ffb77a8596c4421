"""A fake Events API in memory, for testing the client's protocol logic without HTTP and without Airflow."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_cloud4wi.api.errors import Cloud4WiTransientError
from airflow_provider_cloud4wi.api.protocol import LOGIN_PATH, LOGOUT_PATH
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import ClientSettings
from airflow_provider_cloud4wi.api.transport import Reply

ORG = "org1"
DAY = "2024-01-02"
FAST_RETRY = RetryPolicy(max_attempts=5, retry_after_cap=0.0, wait_initial=0.0, wait_max=0.0)


def event(second: int, number: int, *, created_at: str | None = None, kind: str = "visit") -> dict[str, Any]:
    """An event document at ``second`` seconds after midnight of DAY."""
    stamp = created_at or f"{DAY}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return {"event": {"type": kind, "id": f"e{number}"}, "when": {"createdAt": stamp}, "customerId": "c1"}


def jwt(exp: float) -> str:
    """A token shaped like a JWT with an ``exp`` claim (unsigned: only the server would check)."""
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    return f"header.{payload}.signature"


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """A reply with a JSON body."""
    content = json.dumps(body).encode() if body is not None else b""
    return Reply(status, "", headers or {}, content)


Fault = Callable[["FakeApi", Callable[[], Reply]], Reply]


def lost_reply(api: FakeApi, handle: Callable[[], Reply]) -> Reply:
    """The server handles the request (a scroll moves on), but its reply never arrives."""
    handle()
    raise Cloud4WiTransientError("connection dropped (fake)")


def status(code: int, headers: dict[str, str] | None = None, message: str = "fake") -> Fault:
    """The request is answered with ``code`` without being handled."""
    return lambda api, handle: reply(code, {"message": message}, headers)


@dataclass
class FakeApi:
    """
    The Events API as the public docs describe it, in memory, with faults per request number.

    :param events: every event the organization has.
    :param faults: request number (1-based, logins included) -> what happens instead.
    :param token_lifetime: seconds until a token from a login expires.
    """

    events: list[dict[str, Any]]
    faults: dict[int, Fault] = field(default_factory=dict)
    token_lifetime: float = 3600.0
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    scrolls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logins: int = 0
    repeat_forever: bool = False
    #: When set, every fresh query is answered with exactly these events (a server that ignores filters).
    answer_queries_with: list[Any] | None = None

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self.sent.append((method, path, dict(params or {})))
        fault = self.faults.pop(len(self.sent), None)

        def handle() -> Reply:
            return self._handle(path, params or {})

        return fault(self, handle) if fault else handle()

    def close(self) -> None:
        """Nothing to release."""

    def data_requests(self) -> list[dict[str, Any]]:
        """The parameters of every events request, in order."""
        return [params for _, path, params in self.sent if path.endswith("/events")]

    def _handle(self, path: str, params: dict[str, Any]) -> Reply:
        if path == LOGIN_PATH:
            self.logins += 1
            return reply(200, {"token": jwt(time.time() + self.token_lifetime)})
        if path == LOGOUT_PATH:
            return reply(200, {})
        if "scrollId" in params:
            return self._continue(params)
        return self._query(path, params)

    def _query(self, path: str, params: dict[str, Any]) -> Reply:
        if self.answer_queries_with is not None:
            return reply(200, {"events": self.answer_queries_with})
        first, last = params["dateStart"], params["dateEnd"]
        chosen = [e for e in self.events if first <= e["when"]["createdAt"][:19] + "Z" <= last]
        size = int(params["size"])
        if params.get("enableScroll") == "true":
            scroll_id = f"s{len(self.scrolls)}"
            self.scrolls[scroll_id] = chosen[size:]
            return reply(200, {"events": chosen[:size], "scrollId": scroll_id})
        return reply(200, {"events": chosen[:size]})

    def _continue(self, params: dict[str, Any]) -> Reply:
        scroll_id, size = params["scrollId"], int(params["size"])
        if scroll_id not in self.scrolls:
            return reply(404, {"message": "scroll not found"})
        remaining = self.scrolls[scroll_id]
        page = remaining[:size]
        if not self.repeat_forever:
            self.scrolls[scroll_id] = remaining[size:]
        return reply(200, {"events": page, "scrollId": scroll_id})


def settings(**overrides: Any) -> ClientSettings:
    """Settings for the fake API: a key and secret, organization ORG."""
    values: dict[str, Any] = {
        "source": "connection 'fake'",
        "host": "https://api.example.test",
        "client_key": "key",
        "client_secret": "s3cret-value",
        "organization_id": ORG,
        **overrides,
    }
    return ClientSettings.from_parts(**values)


def hour_of_events(count: int = 60, *, per_second: int = 1) -> list[dict[str, Any]]:
    """``count`` events from midnight, ``per_second`` of them sharing each second."""
    return [event(number // per_second, number) for number in range(count)]


WINDOW = (f"{DAY}T00:00:00Z", f"{DAY}T01:00:00Z")
