"""Cloud4WiHook: the connection, the JWT life cycle and the Events API protocol."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity
import urllib3

from airflow_provider_cloud4wi import CONN_TYPE, __version__
from airflow_provider_cloud4wi._compat import AirflowException, BaseHook, mask_secret
from airflow_provider_cloud4wi.windows import Window, format_api_date, parse_instant

_loads: Callable[[bytes], Any]
_dumps: Callable[[Any], bytes]
try:  # orjson parses a 10,000-event page several times faster; plain json is the fallback.
    import orjson

    _loads = orjson.loads
    _dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _loads = json.loads

    def _dumps(document: Any) -> bytes:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


try:  # msgspec lets iter_event_lines decode only the fields it needs and pass each event's bytes on.
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]


def _parse(data: bytes) -> Any:
    """
    Parse a reply body with the cyclic garbage collector paused.

    A 10,000-event page is ~250,000 dicts, lists and strings: with the collector on, building it
    triggers hundreds of young collections and, every few pages, a full one over every object of
    the worker process (Airflow's included), which doubled the parse time. Parsed JSON is a tree
    and never cyclic garbage, so nothing is lost by not collecting while it is built.
    """
    if not gc.isenabled():
        return _loads(data)
    gc.disable()
    try:
        return _loads(data)
    finally:
        gc.enable()


if msgspec is not None:

    class _RawPage(msgspec.Struct):
        """An events page with each event left as its raw JSON text (validated, not decoded)."""

        events: list[msgspec.Raw]
        scrollId: str | None = None

    class _EventBody(msgspec.Struct):
        type: Any = None
        id: Any = None

    class _EventWhen(msgspec.Struct):
        createdAt: Any = None

    class _EventKeys(msgspec.Struct):
        """The only fields of an event the pull reads; msgspec skips the rest without building it."""

        event: _EventBody | None = None
        when: _EventWhen | None = None

    _RAW_PAGE = msgspec.json.Decoder(_RawPage)
    _EVENT_KEYS = msgspec.json.Decoder(_EventKeys)


class _RawEvents(list):  # type: ignore[type-arg]
    """A page's events as raw JSON slices (``msgspec.Raw``), from :func:`_parse_raw_page`."""

    #: Whether the body had line breaks between tokens, so a slice may span lines.
    multiline = False


def _parse_raw_page(data: bytes) -> Any:
    """
    Parse an events page into ``{"events": _RawEvents, "scrollId": ...}`` (needs msgspec).

    The whole body is validated, but each event stays a slice of it. A body of another shape (an
    error, a page with a non-string scrollId...) is parsed fully, as :func:`_parse` would.
    """
    try:
        page = _RAW_PAGE.decode(data)
    except msgspec.ValidationError:
        return _parse(data)
    except msgspec.DecodeError as err:
        raise ValueError(str(err)) from None
    events = _RawEvents(page.events)
    # A JSON string cannot hold a raw line break, so one anywhere in the body is whitespace between
    # tokens: the API's compact bodies have none, and then every slice is a single line as it is.
    events.multiline = b"\n" in data or b"\r" in data
    result: dict[str, Any] = {"events": events}
    if page.scrollId is not None:
        result["scrollId"] = page.scrollId
    return result


DEFAULT_BASE_URL = "https://explore.cloud4wi.com"
MAX_PAGE_SIZE = 10_000

#: The ten types of the public docs, plus those seen in its data example.
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "signup",
        "visit",
        "login",
        "promo",
        "survey",
        "send_email",
        "open_email",
        "click_email",
        "send_sms",
        "click_sms",
        "arriving",
        "geo_visit",
        "geo_arriving",
    }
)

_LOGIN_PATH = "/v1/sts/login/services"
_LOGOUT_PATH = "/v1/sts/logout"
_DEFAULT_TIMEOUT_SECONDS = 60.0
_CONNECT_TIMEOUT_SECONDS = 10.0
_TOKEN_LIFETIME_WITHOUT_EXP = dt.timedelta(days=1)
_TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
#: What an organization or customer id may be: it becomes a path segment of the request.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

log = logging.getLogger(__name__)


class Cloud4WiApiError(AirflowException):
    """The API refused a request in a way that retrying cannot fix (400, 401, 403, 404, ...)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class Cloud4WiAuthError(Cloud4WiApiError):
    """The credentials (or the pre-issued token) were refused, even after a fresh login."""


class Cloud4WiTransientError(AirflowException):
    """A failure worth retrying: 429, 5xx, a dropped connection, a timeout, a truncated body."""

    def __init__(self, reason: str, *, retry_after: float | None = None, immediate: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.immediate = immediate


class _MalformedReply(Cloud4WiApiError):
    """A complete 200 reply that is not the JSON asked for (an HTML page, absurd nesting...)."""


class _ScrollLost(Cloud4WiTransientError):
    """The server no longer knows the scroll (expired or unknown scrollId)."""


@dataclass
class PullStats:
    """What one :meth:`Cloud4WiHook.iter_events` call did, for logs and operators' results."""

    pages: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    outside_window_dropped: int = 0
    resumes: int = 0
    retries: int = 0
    started_monotonic: float = field(default_factory=time.monotonic)

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the pull started."""
        return time.monotonic() - self.started_monotonic

    @property
    def events_per_second(self) -> float:
        """Yield rate so far."""
        return self.events / max(self.elapsed_seconds, 1e-9)


@dataclass(frozen=True)
class _Settings:
    base_url: str
    client_key: str | None
    client_secret: str | None = field(repr=False)
    organization_id: str | None
    token: str | None = field(repr=False)
    timeout: float


@dataclass
class _Token:
    value: str = field(repr=False)
    renew_after: float  # time.time() after which a new login is due
    from_login: bool


class _TimeCursor:
    """
    Where a pull stands: the last ``createdAt`` delivered and the event ids delivered at it.

    Events arrive sorted by ``utcTime`` ascending, so anything older than the cursor was delivered
    already, and only the ids sharing the cursor's second need remembering: memory stays bounded by
    the busiest second, not by the window.
    """

    def __init__(self, first_second: str) -> None:
        self.second = first_second
        self.ids_at_second: set[str] = set()

    def accept(self, created_at: str, event_id: str) -> bool:
        """Record the event and say whether it is new (False for a duplicate)."""
        if created_at > self.second:
            self.second = created_at
            self.ids_at_second = {event_id}
            return True
        if created_at < self.second or event_id in self.ids_at_second:
            return False
        self.ids_at_second.add(event_id)
        return True

    @property
    def resume_from(self) -> str:
        """The ``dateStart`` a fresh query must use to continue without a gap."""
        return self.second[:19] + "Z" if len(self.second) > 20 else self.second


def _event_id(event: dict[str, Any]) -> str:
    body = event.get("event")
    if isinstance(body, dict) and body.get("id"):
        return f"{body.get('type')}:{body['id']}"
    return json.dumps(event, sort_keys=True)


def _created_at(event: dict[str, Any]) -> str:
    when = event.get("when")
    created = when.get("createdAt") if isinstance(when, dict) else None
    if not isinstance(created, str):
        raise Cloud4WiApiError(
            f"The API returned an event without when.createdAt (event id {_event_id(event)})."
        )
    return created


def _is_canonical_utc(created_at: str) -> bool:
    return len(created_at) == 20 and created_at[19] == "Z"


def _check_id(value: Any, name: str) -> str:
    """Return ``value`` as an id fit for a URL path segment, or fail naming ``name``."""
    text = value if isinstance(value, str) else str(value)
    if not _ID_PATTERN.fullmatch(text):
        raise ValueError(
            f"{name} {text[:60]!r} is not an id: use 1 to 128 letters, digits, '-' or '_', starting with "
            "a letter or digit, as shown in the Cloud4Wi console."
        )
    return text


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _token_expiry(token: str) -> float | None:
    """Read the ``exp`` claim of a JWT without verifying it (the server verifies; we only schedule)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if exp is not None else None
    except (IndexError, ValueError, AttributeError, TypeError):
        return None


@dataclass(frozen=True)
class _Reply:
    """One HTTP reply, its body read whole: what the decoding needs, and nothing of the connection."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes


def _excerpt(data: bytes) -> str:
    """The first 100 bytes of a body, as printable text, for error messages."""
    return repr(data[:100].decode("utf-8", errors="replace"))


def _api_message(response: _Reply) -> str:
    try:
        body = _loads(response.content)
    except ValueError:
        text = response.content.decode("utf-8", errors="replace").strip().replace("\n", " ")
        return text[:300] or response.reason or "no message"
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "status"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def _redirect_message(method: str, path: str, response: _Reply | requests.Response) -> str:
    """Why a 3xx reply is refused rather than followed, and where it pointed."""
    location = response.headers.get("Location") or "(none)"
    return (
        f"Cloud4Wi answered {method} {path} with a redirect (HTTP {response.status_code}, Location: "
        f"{location[:200]}), which is never followed so that credentials go nowhere else; check the "
        "connection's host (API base URL)."
    )


def _retry_after_seconds(response: _Reply) -> float | None:
    header = response.headers.get("Retry-After")
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


class _RetryWait(tenacity.wait.wait_base):
    """Honour Retry-After (capped), skip the wait when only a fresh query is needed, else back off."""

    def __init__(self, retry_after_cap: float, initial: float, maximum: float) -> None:
        self.retry_after_cap = retry_after_cap
        self.backoff = tenacity.wait_exponential_jitter(initial=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, Cloud4WiTransientError):
            if error.immediate:
                return 0.0
            if error.retry_after is not None:
                return min(error.retry_after, self.retry_after_cap)
        return float(self.backoff(retry_state))


class Cloud4WiHook(BaseHook):
    """
    Talk to the Cloud4Wi Explore API: log in with a client key/secret and page through events.

    The connection's ``host`` is the API base URL (default ``https://explore.cloud4wi.com``),
    ``login`` the client key and ``password`` the client secret. Its extra may hold
    ``organization_id`` (the ``cid``), ``token`` (a pre-issued JWT, used as is), ``timeout``
    (seconds) and ``allow_insecure_http``.

    :param cloud4wi_conn_id: the Airflow connection to use.
    :param max_attempts: attempts per request before a transient failure is raised.
    :param max_retry_seconds: total time the retries of one request may take.
    :param retry_after_cap: the longest ``Retry-After`` honoured, in seconds.
    :param retry_wait_initial: first backoff between retries, in seconds (doubles each time, with jitter).
    :param retry_wait_max: longest backoff between retries, in seconds.
    :param progress_log_seconds: how often a long pull logs its progress at INFO.
    """

    conn_name_attr = "cloud4wi_conn_id"
    default_conn_name = "cloud4wi_default"
    conn_type = CONN_TYPE
    hook_name = "Cloud4Wi"

    def __init__(
        self,
        cloud4wi_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 8,
        max_retry_seconds: float = 600.0,
        retry_after_cap: float = 120.0,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 30.0,
        progress_log_seconds: float = 30.0,
    ) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}.")
        self.cloud4wi_conn_id = cloud4wi_conn_id
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.retry_after_cap = retry_after_cap
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self.progress_log_seconds = progress_log_seconds
        self._token: _Token | None = None
        self.last_pull: PullStats | None = None

    # ----------------------------------------------------------------------------- connection form
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide fields of the connection form (Airflow 2.11 reads this)."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "API base URL", "login": "Client key", "password": "Client secret"},
            "placeholders": {
                "host": DEFAULT_BASE_URL,
                "login": "client key from Manage > Developers > APIs (API v3)",
                "password": "client secret",
                "organization_id": "155d60f21dc1938562900a0e201d54f6",
                "timeout": "60",
            },
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.11 reads this; 3.2+ reads provider info)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import BooleanField, PasswordField, StringField
        except ImportError:  # Airflow 3 without the FAB UI: the provider info describes the form
            return {}
        return {
            "organization_id": StringField(lazy_gettext("Organization ID"), widget=BS3TextFieldWidget()),
            "token": PasswordField(lazy_gettext("Pre-issued JWT"), widget=BS3PasswordFieldWidget()),
            "timeout": StringField(lazy_gettext("Timeout (seconds)"), widget=BS3TextFieldWidget()),
            "allow_insecure_http": BooleanField(lazy_gettext("Allow plain http")),
        }

    # ----------------------------------------------------------------------------- settings
    @cached_property
    def settings(self) -> _Settings:
        """The connection, read once and checked (no request is sent here)."""
        conn = self.get_connection(self.cloud4wi_conn_id)
        extra = conn.extra_dejson or {}

        def extra_value(name: str) -> Any:
            value = extra.get(name, extra.get(f"extra__{CONN_TYPE}__{name}"))
            return None if value in ("", None) else value

        base_url = self._base_url(conn.host, conn.port, bool(extra_value("allow_insecure_http")))
        for pasted in (conn.password, extra_value("token")):  # also as pasted: Airflow may print those
            if pasted:
                mask_secret(str(pasted))
        token = self._credential(extra_value("token"), "extra 'token' (pre-issued JWT)")
        client_key = self._credential(conn.login, "login (client key)")
        client_secret = self._credential(conn.password, "password (client secret)")
        for secret in (token, client_secret):
            if secret:
                mask_secret(secret)
        if not token and not (client_key and client_secret):
            raise ValueError(
                f"Connection '{self.cloud4wi_conn_id}' has no credentials: set its login to the client key "
                "and its password to the client secret (or put a pre-issued JWT in the extra's 'token')."
            )
        timeout = extra_value("timeout")
        try:
            timeout_seconds = float(timeout) if timeout is not None else _DEFAULT_TIMEOUT_SECONDS
        except (TypeError, ValueError):
            raise ValueError(
                f"Connection '{self.cloud4wi_conn_id}' extra 'timeout' must be a number of seconds, "
                f"not {timeout!r}."
            ) from None
        return _Settings(
            base_url=base_url,
            client_key=client_key,
            client_secret=client_secret,
            organization_id=str(extra_value("organization_id")) if extra_value("organization_id") else None,
            token=token,
            timeout=timeout_seconds,
        )

    def _credential(self, value: Any, name: str) -> str | None:
        """
        A credential with the whitespace a paste adds around it removed; None when empty.

        Whitespace or control characters inside it are refused: they cannot be part of a key, a
        secret or a JWT, and would otherwise surface as a refused login or a malformed header.
        """
        if value is None:
            return None
        text = str(value).strip()
        if any(char.isspace() or not char.isprintable() for char in text):
            raise ValueError(
                f"Connection '{self.cloud4wi_conn_id}' {name} holds whitespace or a control character "
                "inside it; paste it again exactly as issued, on one line."
            )
        return text or None

    def _base_url(self, host: str | None, port: int | None, allow_insecure_http: bool) -> str:
        raw = (host or DEFAULT_BASE_URL).strip().rstrip("/")
        if "://" not in raw:
            raw = f"https://{raw}"
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"Connection '{self.cloud4wi_conn_id}' host {raw!r} is not an http(s) URL; "
                f"use e.g. {DEFAULT_BASE_URL}."
            )
        if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
            raise ValueError(
                f"Connection '{self.cloud4wi_conn_id}' would send the client secret over plain http to "
                f'{parts.hostname}. Use an https:// host, or set "allow_insecure_http": true in the '
                "connection's extra if this really is a trusted network."
            )
        if port and parts.port is None:
            raw = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
        return raw

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive HTTP session for all requests of this hook."""
        session = requests.Session()
        session.headers.update(
            {"Accept": "application/json", "User-Agent": f"airflow-provider-cloud4wi/{__version__}"}
        )
        return session

    def _timeout(self) -> tuple[float, float]:
        return (min(_CONNECT_TIMEOUT_SECONDS, self.settings.timeout), self.settings.timeout)

    # ----------------------------------------------------------------------------- authentication
    def get_token(self) -> str:
        """Return a valid JWT, logging in (with retries) when none is cached or it is about to expire."""
        return str(self._with_retries("login", self._current_token))

    def _current_token(self) -> str:
        token = self._token
        if token is None or time.time() >= token.renew_after:
            if token is None and self.settings.token:
                token = self._preissued_token()
            elif self._can_login():
                token = self._login()
            else:  # an expired pre-issued token and nothing to log in with: the API will judge it
                token = self._preissued_token()
            self._token = token
        return token.value

    def _can_login(self) -> bool:
        return bool(self.settings.client_key and self.settings.client_secret)

    def _preissued_token(self) -> _Token:
        value = self.settings.token or ""
        expiry = _token_expiry(value)
        return _Token(value=value, renew_after=expiry if expiry else float("inf"), from_login=False)

    def _server_message(self, response: _Reply) -> str:
        """The API's message with every known secret blanked out: a server may echo the request."""
        message = _api_message(response)
        secrets = (self.settings.client_secret, self.settings.token, self._token and self._token.value)
        for secret in secrets:
            if secret:
                message = message.replace(secret, "***")
        return message

    def _login(self) -> _Token:
        settings = self.settings
        # No retry loop of its own: every caller already runs inside one (see _with_retries).
        body = self._send(
            "POST",
            _LOGIN_PATH,
            json_body={"clientKey": settings.client_key, "clientSecret": settings.client_secret},
            authenticated=False,
        )
        value = body.get("token") if isinstance(body, dict) else None
        if not value:
            raise Cloud4WiAuthError("The login reply held no token; is the host really the Cloud4Wi API?")
        mask_secret(value)
        expiry = _token_expiry(value)
        if expiry is None:
            renew_after = (
                time.time() + _TOKEN_LIFETIME_WITHOUT_EXP.total_seconds() - _TOKEN_RENEWAL_MARGIN_SECONDS
            )
        else:
            lifetime = max(expiry - time.time(), 0.0)
            renew_after = expiry - min(_TOKEN_RENEWAL_MARGIN_SECONDS, lifetime / 10)
        self.log.info("Logged in to Cloud4Wi at %s (client key %s).", settings.base_url, settings.client_key)
        return _Token(value=value, renew_after=renew_after, from_login=True)

    def logout(self) -> None:
        """Revoke the JWT this hook obtained by logging in (a pre-issued token is left alone)."""
        token, self._token = self._token, None
        if token is None or not token.from_login:
            return
        try:
            response = self.session.post(
                self.settings.base_url + _LOGOUT_PATH,
                headers={"Authorization": f"Bearer {token.value}"},
                timeout=self._timeout(),
                allow_redirects=False,
            )
        except requests.RequestException as err:
            self.log.warning("Cloud4Wi logout failed (%s); the token expires by itself.", type(err).__name__)
            return
        if 300 <= response.status_code < 400:
            self.log.warning(
                "Cloud4Wi logout not done: %s", _redirect_message("POST", _LOGOUT_PATH, response)
            )

    def close(self) -> None:
        """Log out and close the HTTP session."""
        self.logout()
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    # ----------------------------------------------------------------------------- requests
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
        authenticated: bool = True,
        organization_id: str | None = None,
        raw_events: bool = False,
    ) -> Any:
        """
        Send one request and return its decoded JSON body.

        With ``raw_events`` (and msgspec installed) an events page comes back with its events as
        raw JSON slices (see :func:`_parse_raw_page`).

        A 401 on an authenticated request triggers one fresh login and one repeat. Transient
        failures raise :class:`Cloud4WiTransientError`, the others :class:`Cloud4WiApiError`.
        """
        response = self._send_once(method, path, params, json_body, authenticated)
        if response.status_code == 401 and authenticated:
            if not self._can_login():
                raise Cloud4WiAuthError(
                    f"Cloud4Wi refused the pre-issued token of connection '{self.cloud4wi_conn_id}' "
                    f"(HTTP 401: {self._server_message(response)}). Issue a new one, or set the client key "
                    "and secret as the connection's login and password so the hook can log in itself.",
                    http_status=401,
                )
            self.log.info("Cloud4Wi answered 401 on %s; logging in again and repeating it once.", path)
            self._token = self._login()
            response = self._send_once(method, path, params, json_body, authenticated)
        return self._decode(response, method, path, authenticated, organization_id, raw_events)

    def _send_once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        authenticated: bool,
    ) -> _Reply:
        headers = {"Authorization": f"Bearer {self._current_token()}"} if authenticated else None
        try:
            response = self.session.request(
                method,
                self.settings.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=self._timeout(),
                stream=True,
                # A redirect would resend the secret or the token to wherever Location points.
                allow_redirects=False,
            )
            try:
                # The body in one read: requests' own .content reads it 10 KiB at a time through
                # urllib3, ~500 Python-level reads for each 5 MB page.
                content = response.raw.read(decode_content=True)
            finally:
                response.close()  # the body is consumed: this hands the connection back to the pool
            return _Reply(response.status_code, response.reason or "", response.headers, content)
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

    def _decode(
        self,
        response: _Reply,
        method: str,
        path: str,
        authenticated: bool,
        organization_id: str | None,
        raw_events: bool = False,
    ) -> Any:
        status = response.status_code
        if 300 <= status < 400:
            raise Cloud4WiApiError(_redirect_message(method, path, response), http_status=status)
        if status == 200:
            content = response.content
            try:
                if raw_events and msgspec is not None:
                    return _parse_raw_page(content)
                return _parse(content)
            except (ValueError, RecursionError) as err:
                # A body cut short is worth another try; one that is whole but not JSON never heals.
                if isinstance(err, RecursionError) or "depth" in str(err):
                    raise _MalformedReply(
                        f"{method} {path} returned JSON nested too deeply to read: {_excerpt(content)}",
                        http_status=status,
                    ) from None
                if content.lstrip()[:1] not in (b"{", b"["):
                    raise _MalformedReply(
                        f"{method} {path} returned a body that is not JSON (is the host really the Cloud4Wi "
                        f"API?): {_excerpt(content)}",
                        http_status=status,
                    ) from None
                raise Cloud4WiTransientError(
                    f"truncated or malformed JSON body on {method} {path} ({len(response.content)} bytes)"
                ) from None
        if status == 429:
            raise Cloud4WiTransientError(
                f"rate limited (HTTP 429) on {method} {path}", retry_after=_retry_after_seconds(response)
            )
        if status >= 500 or status in (408, 425):
            raise Cloud4WiTransientError(f"HTTP {status} on {method} {path}")
        message = self._server_message(response)
        if status == 401:
            hint = (
                "Check the connection's login (client key) and password (client secret), and that the key "
                "is active in Manage > Developers > APIs."
                if not authenticated
                else "A freshly issued token was refused too; check the key's role and scopes."
            )
            raise Cloud4WiAuthError(
                f"Cloud4Wi refused the credentials of connection '{self.cloud4wi_conn_id}' "
                f"(HTTP 401: {message}). {hint}",
                http_status=401,
            )
        hints = {
            400: "The request was malformed; check event_types, page_size and the window.",
            403: "Check that the organization id is the {cid} the client key was issued for, and that the "
            "key has the organization_read and events_read scopes.",
            404: "Check the organization id and, for a contact's events, the customer id.",
        }
        where = f" Organization id: {organization_id}." if organization_id else ""
        raise Cloud4WiApiError(
            f"Cloud4Wi rejected {method} {path} (HTTP {status}: {message}).{where} "
            f"{hints.get(status, 'See the API message above.')}",
            http_status=status,
        )

    def _with_retries(
        self, what: str, call: Any, stats: PullStats | None = None, max_attempts: int | None = None
    ) -> Any:
        """Run ``call`` under the retry policy: transient failures only, bounded in attempts and time."""
        attempts = max_attempts or self.max_attempts

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            if stats is not None:
                stats.retries += 1
            self.log.warning(
                "Cloud4Wi %s: %s; retry %d of %d in %.1fs.",
                what,
                error,
                state.attempt_number,
                attempts - 1,
                delay,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Cloud4WiTransientError),
            stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(self.max_retry_seconds),
            wait=_RetryWait(self.retry_after_cap, self.retry_wait_initial, self.retry_wait_max),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(call)

    # ----------------------------------------------------------------------------- events
    def resolve_organization_id(self, organization_id: str | None = None) -> str:
        """
        Return ``organization_id``, else the connection's, else fail saying where to set one.

        :param organization_id: the ``cid`` given by the caller, if any.
        """
        org = organization_id or self.settings.organization_id
        if not org:
            raise ValueError(
                f'No organization id: pass organization_id, or set "organization_id" in the extra of '
                f"connection '{self.cloud4wi_conn_id}'."
            )
        return _check_id(org, "organization_id")

    @staticmethod
    def check_customer_id(customer_id: str | None) -> None:
        """Refuse a customer id that is not None and not an id (``""`` included: None means all)."""
        if customer_id is not None:
            _check_id(customer_id, "customer_id")

    @staticmethod
    def normalize_event_types(event_types: Sequence[str] | str | None) -> str | None:
        """
        Check event types against ``KNOWN_EVENT_TYPES`` and join them as the API's ``events=`` wants.

        :param event_types: a list of types, one comma-separated string, or None (all types).
        :return: the comma-separated types, or None when no filter applies.
        """
        if event_types is None:
            return None
        types = [event_types] if isinstance(event_types, str) else list(event_types)
        types = [t.strip() for item in types for t in str(item).split(",") if t.strip()]
        if not types:  # blank is a mistake, not a request for every type
            raise ValueError(
                f"event_types {event_types!r} holds no event type: "
                "give at least one event type, or None for all."
            )
        unknown = sorted(set(types) - KNOWN_EVENT_TYPES)
        if unknown:
            raise ValueError(f"Unknown event type(s) {unknown}; known types are {sorted(KNOWN_EVENT_TYPES)}.")
        return ",".join(dict.fromkeys(types))

    @staticmethod
    def check_page_size(page_size: int) -> None:
        """Refuse a page size the API does not accept (1 to 10000)."""
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= MAX_PAGE_SIZE
        ):
            raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, not {page_size!r}.")

    def iter_events(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield every event created in ``[window_start, window_end)``, each once, oldest first.

        Documents are yielded exactly as the API returned them. Only one page is held at a time.
        A lost scroll (expired id, dropped reply, failed continuation) is never re-sent: the pull
        resumes with a fresh query from the last second it delivered, skipping what it already
        yielded at that second.

        :param window_start: first instant included (aware datetime or ISO 8601 string).
        :param window_end: first instant excluded.
        :param event_types: restrict to these types (see ``KNOWN_EVENT_TYPES``).
        :param customer_id: only this contact's events (the per-contact endpoint).
        :param organization_id: the ``cid``; defaults to the connection's extra.
        :param page_size: events per request, 1 to 10000.
        """
        yield from self._pull(
            window_start, window_end, event_types, customer_id, organization_id, page_size, lines=False
        )

    def iter_event_lines(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[bytes]:
        """
        Yield the events of :meth:`iter_events` as lines: each one compact JSON document, UTF-8, no newline.

        The same events, in the same order, with the same de-duplication, window filter, resumes
        and retries. With msgspec installed, each page is validated whole but only the fields the
        pull reads (``event.type``, ``event.id``, ``when.createdAt``) are decoded, and each line is
        the API's own text of the event: no dicts are built and nothing is re-serialised (an event
        without those fields in their usual form is parsed in full and re-serialised, as without
        msgspec). Parameters as for :meth:`iter_events`.
        """
        yield from self._pull(
            window_start, window_end, event_types, customer_id, organization_id, page_size, lines=True
        )

    def _pull(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        event_types: Sequence[str] | str | None,
        customer_id: str | None,
        organization_id: str | None,
        page_size: int,
        *,
        lines: bool,
    ) -> Iterator[Any]:
        window = Window.parse(window_start, window_end)
        self.check_page_size(page_size)
        types_param = self.normalize_event_types(event_types)
        org = self.resolve_organization_id(organization_id)
        self.check_customer_id(customer_id)
        stats = PullStats()
        self.last_pull = stats
        bounds = window.api_bounds()
        if bounds is None:
            return
        self.log.info("Pulling Cloud4Wi events of organization %s in %s.", org, window)
        path = self._events_path(org, customer_id)
        # The per-contact endpoint has no scroll: the time cursor pages through it alone.
        yield from self._pages(
            path, org, bounds, types_param, page_size, scroll=not customer_id, stats=stats, lines=lines
        )
        self.log.info(
            "Pulled %d events of organization %s in %s: %d pages, %d duplicates dropped, %d scroll resumes, "
            "%d retries, %.1fs, %.0f events/s.",
            stats.events,
            org,
            window,
            stats.pages,
            stats.duplicates_dropped,
            stats.resumes,
            stats.retries,
            stats.elapsed_seconds,
            stats.events_per_second,
        )

    @staticmethod
    def _events_path(org: str, customer_id: str | None) -> str:
        base = f"/v1/organizations/{quote(org, safe='')}"
        if customer_id:
            return f"{base}/customers/{quote(str(customer_id), safe='')}/events"
        return f"{base}/events"

    def _query_params(
        self, date_start: str, date_end: str, types_param: str | None, page_size: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "dateStart": date_start,
            "dateEnd": date_end,
            "size": page_size,
            "sortBy": "utcTime",
            "sortReverse": "false",
        }
        if types_param:
            params["events"] = types_param
        return params

    def _deliver(
        self,
        events: list[Any],
        cursor: _TimeCursor,
        bounds: tuple[str, str],
        stats: PullStats,
        lines: bool = False,
    ) -> Iterator[Any]:
        """Yield the events of one page that are new and in the window (as lines with ``lines``)."""
        if isinstance(events, _RawEvents):
            yield from self._deliver_raw(events, cursor, bounds, stats)
            return
        first, last = bounds
        for event in events:
            if not isinstance(event, dict):
                where = f"Events page {stats.pages}" if stats.pages else "The events reply"
                raise Cloud4WiApiError(
                    f"{where} holds an event that is not a JSON object: {_excerpt(_dumps(event))}"
                )
            created_at = _created_at(event)
            key = created_at if _is_canonical_utc(created_at) else self._canonical(created_at)
            if not first <= key <= last:
                stats.outside_window_dropped += 1
                continue
            if not cursor.accept(key, _event_id(event)):
                stats.duplicates_dropped += 1
                continue
            stats.events += 1
            yield _dumps(event) if lines else event

    def _deliver_raw(
        self, events: _RawEvents, cursor: _TimeCursor, bounds: tuple[str, str], stats: PullStats
    ) -> Iterator[bytes]:
        """:meth:`_deliver` for raw slices: the same rules, on the three fields decoded from each."""
        first, last = bounds
        decode = _EVENT_KEYS.decode
        accept = cursor.accept
        for raw in events:
            try:
                keys = decode(raw)
            except msgspec.ValidationError:  # e.g. "event" or "when" not an object
                keys = None
            body = keys.event if keys is not None else None
            when = keys.when if keys is not None else None
            created_at = when.createdAt if when is not None else None
            if not (
                isinstance(created_at, str)
                and _is_canonical_utc(created_at)
                and body is not None
                and isinstance(body.id, str)
                and body.id
                and isinstance(body.type, str)
            ):
                # Anything unusual takes the full parse and the general rules (and their errors).
                yield from self._deliver([_loads(bytes(raw))], cursor, bounds, stats, lines=True)
                continue
            if not first <= created_at <= last:
                stats.outside_window_dropped += 1
                continue
            if not accept(created_at, f"{body.type}:{body.id}"):
                stats.duplicates_dropped += 1
                continue
            stats.events += 1
            yield _dumps(_loads(bytes(raw))) if events.multiline else bytes(raw)

    @staticmethod
    def _canonical(created_at: str) -> str:
        """Whole-second UTC form of a timestamp in another ISO 8601 form (ceil keeps half-open exact)."""
        instant = parse_instant(created_at, "createdAt")
        if instant.microsecond:
            instant = instant.replace(microsecond=0) + dt.timedelta(seconds=1)
        return format_api_date(instant)

    def _page_done(self, stats: PullStats, org: str, last_progress: list[float]) -> None:
        stats.pages += 1
        now = time.monotonic()
        if now - last_progress[0] >= self.progress_log_seconds:
            last_progress[0] = now
            self.log.info(
                "Cloud4Wi organization %s: %d pages, %d events so far, %.0f events/s.",
                org,
                stats.pages,
                stats.events,
                stats.events_per_second,
            )

    def _pages(
        self,
        path: str,
        org: str,
        bounds: tuple[str, str],
        types_param: str | None,
        page_size: int,
        *,
        scroll: bool,
        stats: PullStats,
        lines: bool = False,
    ) -> Iterator[Any]:
        """
        Drive one pull: a scroll where the endpoint has one, else fresh queries from the time cursor.

        Both end the same way whatever goes wrong in between: every event of ``bounds`` delivered
        once, because a lost scroll only ever falls back to a fresh query from the cursor.
        """
        cursor = _TimeCursor(bounds[0])
        scroll_id: str | None = None
        last_progress = [time.monotonic()]

        def fresh_query() -> dict[str, Any]:
            params = self._query_params(cursor.resume_from, bounds[1], types_param, page_size)
            if scroll:
                params["enableScroll"] = "true"
            return self._send("GET", path, params=params, organization_id=org, raw_events=lines)

        def continuation(sent: str) -> dict[str, Any]:
            try:
                return self._send(
                    "GET",
                    path,
                    params={"scrollId": sent, "size": page_size},
                    organization_id=org,
                    raw_events=lines,
                )
            except Cloud4WiApiError as err:
                if err.http_status not in (400, 404, 410):
                    raise
                stats.resumes += 1
                raise _ScrollLost(
                    f"scroll expired or unknown (HTTP {err.http_status}); resuming from {cursor.resume_from}",
                    immediate=True,
                ) from None
            except Cloud4WiTransientError as err:
                stats.resumes += 1
                raise Cloud4WiTransientError(
                    f"{err}; the scroll is abandoned and the pull resumes from {cursor.resume_from}",
                    retry_after=err.retry_after,
                ) from None

        def next_page() -> tuple[dict[str, Any], bool]:
            nonlocal scroll_id
            sent, scroll_id = scroll_id, None  # a continuation that failed is never sent again
            page = continuation(sent) if sent else fresh_query()
            if not isinstance(page, dict) or not isinstance(page.get("events"), list):
                raise Cloud4WiApiError(f"Unexpected reply from {path}: no 'events' list.")
            scroll_id = (page.get("scrollId") or sent) if scroll else None
            return page, sent is None

        while True:
            try:
                page, from_fresh_query = self._with_retries(
                    f"events page {stats.pages + 1}", next_page, stats
                )
            except _MalformedReply as err:
                raise Cloud4WiApiError(f"Events page {stats.pages + 1}: {err}", http_status=200) from None
            events: list[Any] = page["events"]
            self._page_done(stats, org, last_progress)
            delivered_before = stats.events
            yield from self._deliver(events, cursor, bounds, stats, lines)
            if not events:
                return
            if not from_fresh_query:
                continue
            # A short first page holds everything left. A full one that brought nothing new means
            # one second holds more events than a page, which paging by time cannot get past.
            if len(events) < page_size:
                return
            if stats.events == delivered_before:
                raise Cloud4WiApiError(
                    f"More than {page_size} events of {path} share the second {cursor.second}, so paging by "
                    f"time cannot move past it. Raise page_size (up to {MAX_PAGE_SIZE})."
                )

    def count_events(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        limit: int = 1,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        max_attempts: int | None = None,
    ) -> int:
        """
        Return how many events the window holds, counting at most ``limit`` (one cheap request).

        :param limit: the most events to count (the request's ``size``), 1 to 10000.
        :param event_types: restrict to these types.
        :param customer_id: count only this contact's events.
        :param organization_id: the ``cid``; defaults to the connection's extra.
        :param max_attempts: attempts before a transient failure is raised (default: the hook's).
        """
        window = Window.parse(window_start, window_end)
        self.check_page_size(limit)
        types_param = self.normalize_event_types(event_types)
        org = self.resolve_organization_id(organization_id)
        self.check_customer_id(customer_id)
        bounds = window.api_bounds()
        if bounds is None:
            return 0
        path = self._events_path(org, customer_id)
        params = self._query_params(bounds[0], bounds[1], types_param, limit)
        page = self._with_retries(
            "events count",
            lambda: self._send("GET", path, params=params, organization_id=org),
            max_attempts=max_attempts,
        )
        events = page.get("events") if isinstance(page, dict) else None
        if not isinstance(events, list):
            raise Cloud4WiApiError(f"Unexpected reply from {path}: no 'events' list.")
        stats = PullStats()
        return min(limit, sum(1 for _ in self._deliver(events, _TimeCursor(bounds[0]), bounds, stats)))

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read one event; return ``(ok, message)`` instead of raising."""
        try:
            org = self.resolve_organization_id(None)
            now = dt.datetime.now(dt.timezone.utc)
            seen = self.count_events(
                now - dt.timedelta(days=1), now, limit=1, organization_id=org, max_attempts=2
            )
        except requests.RequestException as err:  # its text can quote headers or URLs: only the type
            return False, f"{type(err).__name__}: check the connection's host, login, password and extra."
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        finally:
            self.logout()
        return True, f"Connected to {self.settings.base_url} for organization {org}; read {seen} event(s)."
