"""One HTTP request and its reply: the only module of the client that touches the network.

A transport sends a request and hands back a :class:`Reply` with the body read whole, or raises
:class:`Cloud4WiTransientError` / :class:`Cloud4WiApiError`. It never follows a redirect, caps every
body on the wire and after decompression, and gives each request one deadline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import urllib3

from airflow_provider_cloud4wi import __version__
from airflow_provider_cloud4wi.api import protocol
from airflow_provider_cloud4wi.api.deadline import DeadlineAdapter, deadline
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError, Cloud4WiTransientError
from airflow_provider_cloud4wi.api.settings import ClientSettings

_CONNECT_TIMEOUT_SECONDS = 10.0
#: How many read timeouts one request may last in all, body included (a body may drip forever).
_DEADLINE_IN_READ_TIMEOUTS = 5
_READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Reply:
    """One HTTP reply, its body read whole: what the decoding needs, and nothing of the connection."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes


class Transport(Protocol):
    """Sends one request; what the client needs of HTTP (a fake one drives the unit tests)."""

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send ``method path`` and return the reply, or raise a Cloud4Wi error."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


class HttpTransport:
    """
    The requests-based transport: one keep-alive session, no redirects, capped bodies, one deadline.

    :param settings: base URL, read timeout and reply cap.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.session = new_session()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send ``method path`` and return the reply, or raise a Cloud4Wi error."""
        timeout = self.settings.timeout
        limit_seconds = _DEADLINE_IN_READ_TIMEOUTS * timeout
        with deadline(limit_seconds) as watched:
            try:
                reply = self._send(method, path, params, json_body, headers, time.monotonic() + limit_seconds)
            except (Cloud4WiTransientError, Cloud4WiApiError):
                if watched.expired:
                    raise self._too_slow(method, path) from None
                raise
        # A cut socket can also look like a reply that simply ended: never take it for a whole one.
        if watched.expired:
            raise self._too_slow(method, path)
        return reply

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        headers: dict[str, str] | None,
        deadline_monotonic: float,
    ) -> Reply:
        timeout = self.settings.timeout
        try:
            response = self.session.request(
                method,
                self.settings.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=(min(_CONNECT_TIMEOUT_SECONDS, timeout), timeout),
                stream=True,
                # A redirect would resend the secret or the token to wherever Location points.
                allow_redirects=False,
            )
            try:
                content = self._read_body(response, method, path, deadline_monotonic)
            finally:
                response.close()  # hands the connection back to the pool, or drops it if unread
            return Reply(response.status_code, response.reason or "", response.headers, content)
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as err:
            raise Cloud4WiTransientError(f"timed out on {method} {path} ({type(err).__name__})") from None
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,  # the body read failing: ProtocolError, ReadTimeoutError, ...
        ) as err:
            raise Cloud4WiTransientError(
                f"connection dropped on {method} {path} ({type(err).__name__})"
            ) from None
        except requests.RequestException as err:
            # Only the type: the text of requests' errors can quote headers or URLs, so credentials.
            raise Cloud4WiApiError(
                f"Could not send {method} {path} ({type(err).__name__}); check the connection's host "
                "(API base URL), login, password and extra."
            ) from None

    def _read_body(self, response: requests.Response, method: str, path: str, deadline: float) -> bytes:
        """
        Read the body, decompressed, refusing one larger than the cap or slower than the deadline.

        ``read1`` returns what one socket read brings, so a body dripping a byte at a time still
        comes back to this loop, and urllib3 (2.6+) inflates at most the amount asked for per call,
        so a compressed bomb never expands past the cap in memory.
        """
        limit = self.settings.max_reply_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(method, path, limit)
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(_READ_CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise _too_large(method, path, limit)
            if time.monotonic() > deadline:
                raise self._too_slow(method, path)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_slow(self, method: str, path: str) -> Cloud4WiTransientError:
        return Cloud4WiTransientError(
            f"{method} {path} took longer than {_DEADLINE_IN_READ_TIMEOUTS} read timeouts "
            f"({_DEADLINE_IN_READ_TIMEOUTS * self.settings.timeout:.0f}s) in all"
        )

    def close(self) -> None:
        """Close the HTTP session (a read in progress is not interrupted)."""
        self.session.close()


def new_session() -> requests.Session:
    """A keep-alive session that announces the provider and asks for JSON."""
    session = requests.Session()
    # One kept connection per request a pull may have in flight: the default pool of 10 drops
    # and reopens connections above that, a TLS handshake each.
    adapter = DeadlineAdapter(pool_maxsize=protocol.MAX_CONCURRENCY)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": f"airflow-provider-cloud4wi/{__version__}",
        }
    )
    return session


def _too_large(method: str, path: str, limit: int) -> Cloud4WiApiError:
    return Cloud4WiApiError(
        f"{method} {path} returned a reply larger than {limit // (1024 * 1024)} MiB (on the wire or "
        "decompressed), far more than a page of events; is the host really the Cloud4Wi API?"
    )
