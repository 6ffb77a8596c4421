"""Turning a reply into a decoded body or the error that says what to check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from airflow_provider_cloud4wi.api import codec
from airflow_provider_cloud4wi.api.errors import (
    FRESH_TOKEN_REFUSED_HINT,
    LOGIN_REFUSED_HINT,
    REFUSAL_HINTS,
    Cloud4WiApiError,
    Cloud4WiAuthError,
    Cloud4WiTransientError,
    MalformedReply,
)
from airflow_provider_cloud4wi.api.transport import Reply


def decode(
    reply: Reply,
    method: str,
    path: str,
    *,
    raw_events: bool = False,
    authenticated: bool = True,
    organization_id: str | None = None,
    source: str = "the connection",
    secrets: Iterable[str | None] = (),
) -> Any:
    """
    Return the JSON body of a 200 reply, or raise the error its status means.

    :param raw_events: parse an events page leaving each event as its JSON text (see codec).
    :param authenticated: whether the request carried a token (a 401 then means a refused token).
    :param organization_id: named in the message of a refusal.
    :param source: how messages name the connection.
    :param secrets: blanked out of any message quoted from the server.
    """
    status = reply.status_code
    if 300 <= status < 400:
        raise Cloud4WiApiError(
            redirect_message(method, path, reply.status_code, reply.headers), http_status=status
        )
    if status == 200:
        return _parse_body(reply.content, method, path, raw_events)
    if status == 429:
        raise Cloud4WiTransientError(
            f"rate limited (HTTP 429) on {method} {path}", retry_after=retry_after_seconds(reply)
        )
    if status >= 500 or status in (408, 425):
        raise Cloud4WiTransientError(f"HTTP {status} on {method} {path}")
    message = server_message(reply, secrets)
    if status == 401:
        hint = FRESH_TOKEN_REFUSED_HINT if authenticated else LOGIN_REFUSED_HINT
        raise Cloud4WiAuthError(
            f"Cloud4Wi refused the credentials of {source} (HTTP 401: {message}). {hint}", http_status=401
        )
    where = f" Organization id: {organization_id}." if organization_id else ""
    raise Cloud4WiApiError(
        f"Cloud4Wi rejected {method} {path} (HTTP {status}: {message}).{where} "
        f"{REFUSAL_HINTS.get(status, 'See the API message above.')}",
        http_status=status,
    )


def _parse_body(content: bytes, method: str, path: str, raw_events: bool) -> Any:
    try:
        return codec.parse_events_page(content, raw=raw_events)
    except (ValueError, RecursionError) as err:
        # A body cut short is worth another try; one that is whole but not JSON never heals.
        if isinstance(err, RecursionError) or "depth" in str(err):
            raise MalformedReply(
                f"{method} {path} returned JSON nested too deeply to read: {codec.excerpt(content)}",
                http_status=200,
            ) from None
        if content.lstrip()[:1] not in (b"{", b"["):
            raise MalformedReply(
                f"{method} {path} returned a body that is not JSON (is the host really the Cloud4Wi "
                f"API?): {codec.excerpt(content)}",
                http_status=200,
            ) from None
        raise Cloud4WiTransientError(
            f"truncated or malformed JSON body on {method} {path} ({len(content)} bytes)"
        ) from None


def server_message(reply: Reply, secrets: Iterable[str | None] = ()) -> str:
    """The API's own message in a refusal, with every known secret blanked out (a server may echo)."""
    message = _api_message(reply)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def _api_message(reply: Reply) -> str:
    try:
        body = codec.loads(reply.content)
    except ValueError:
        text = reply.content.decode("utf-8", errors="replace").strip().replace("\n", " ")
        return text[:300] or reply.reason or "no message"
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "status"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def redirect_message(method: str, path: str, status: int, headers: Any) -> str:
    """Why a 3xx reply is refused rather than followed, and where it pointed."""
    location = headers.get("Location") or "(none)"
    return (
        f"Cloud4Wi answered {method} {path} with a redirect (HTTP {status}, Location: "
        f"{location[:200]}), which is never followed so that credentials go nowhere else; check the "
        "connection's host (API base URL)."
    )


def retry_after_seconds(reply: Reply) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date), or None."""
    header = reply.headers.get("Retry-After")
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        try:
            when = dt.datetime.strptime(header, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None
        return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
