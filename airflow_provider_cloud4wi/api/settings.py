"""Client settings: the API base URL (https unless told otherwise), credentials, timeouts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_cloud4wi.api.protocol import DEFAULT_BASE_URL

DEFAULT_TIMEOUT_SECONDS = 60.0
#: Largest reply accepted, on the wire and after decompression: a full page of 10,000 events is
#: about 5 MB, and a reply is held whole while it is parsed, so this also bounds the memory it takes.
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class ClientSettings:
    """
    Where and how the client talks to the API. Build it with :meth:`from_parts` to get the checks.

    :param base_url: the API base URL, without a trailing slash.
    :param client_key: the client key (login), or None with a pre-issued token.
    :param client_secret: the client secret (password), or None with a pre-issued token.
    :param organization_id: the default ``cid``, or None.
    :param token: a pre-issued JWT used as is, or None.
    :param timeout: read timeout of each request, in seconds.
    :param source: how error messages name where these settings came from, e.g.
        ``"connection 'cloud4wi_default'"``.
    :param max_reply_bytes: largest reply accepted, on the wire and decompressed.
    """

    base_url: str
    client_key: str | None
    client_secret: str | None = field(repr=False)
    organization_id: str | None
    token: str | None = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    source: str = "the client settings"
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    @classmethod
    def from_parts(
        cls,
        *,
        source: str,
        host: str | None,
        port: int | None = None,
        client_key: Any = None,
        client_secret: Any = None,
        token: Any = None,
        organization_id: Any = None,
        timeout: Any = None,
        allow_insecure_http: bool = False,
        max_reply_mb: Any = None,
    ) -> ClientSettings:
        """
        Check and clean what a connection holds; no request is sent.

        :param source: how messages name the origin, e.g. ``"connection 'cloud4wi_default'"``.
        :param host: the API base URL (a bare host name means https).
        :param port: a port to add when the host names none.
        :param allow_insecure_http: allow plain http to a host that is not loopback.
        :param max_reply_mb: largest reply accepted, in MiB (default 64).
        Other parameters as for the class.
        """
        base_url = _base_url(host, port, allow_insecure_http, source)
        token_text = _credential(token, "extra 'token' (pre-issued JWT)", source)
        key = _credential(client_key, "login (client key)", source)
        secret = _credential(client_secret, "password (client secret)", source)
        if not token_text and not (key and secret):
            raise ValueError(
                f"{_sentence(source)} has no credentials: set its login to the client key and its password "
                "to the client secret (or put a pre-issued JWT in the extra's 'token')."
            )
        return cls(
            base_url=base_url,
            client_key=key,
            client_secret=secret,
            organization_id=str(organization_id) if organization_id else None,
            token=token_text,
            timeout=_positive_number(timeout, "timeout", DEFAULT_TIMEOUT_SECONDS, source),
            source=source,
            max_reply_bytes=int(
                _positive_number(max_reply_mb, "max_reply_mb", DEFAULT_MAX_REPLY_BYTES / 2**20, source)
                * 2**20
            ),
        )

    @property
    def can_login(self) -> bool:
        """Whether a client key and secret are there to log in with."""
        return bool(self.client_key and self.client_secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets of these settings, to blank out of anything shown."""
        return tuple(value for value in (self.client_secret, self.token) if value)


def _credential(value: Any, name: str, source: str) -> str | None:
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
            f"{_sentence(source)} {name} holds whitespace or a control character inside it; paste it "
            "again exactly as issued, on one line."
        )
    return text or None


def _positive_number(value: Any, name: str, default: float, source: str) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        unit = "a number of seconds" if name == "timeout" else "a number of MiB"
        raise ValueError(f"{_sentence(source)} extra {name!r} must be {unit} above 0, not {value!r}.")
    return number


def _base_url(host: str | None, port: int | None, allow_insecure_http: bool, source: str) -> str:
    raw = (host or DEFAULT_BASE_URL).strip().rstrip("/")
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{_sentence(source)} host {raw!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}."
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{_sentence(source)} would send the client secret over plain http to {parts.hostname}. "
            'Use an https:// host, or set "allow_insecure_http": true in the connection\'s extra if '
            "this really is a trusted network."
        )
    if port and parts.port is None:
        raw = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return raw


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _sentence(source: str) -> str:
    """``source`` at the start of a sentence."""
    return source[:1].upper() + source[1:]
