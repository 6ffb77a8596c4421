"""What the simulated Explore API promises: credentials, limits, event types, paths, error replies."""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_CLIENT_KEY",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORGANIZATION_ID",
    "DEFAULT_PAGE_SIZE",
    "EVENT_TYPES",
    "MAX_PAGE_SIZE",
]

DEFAULT_ORGANIZATION_ID = "155d60f21dc1938562900a0e201d54f6"
DEFAULT_CLIENT_KEY = "sim-client-key"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
#: The largest page a request may ask for (``size``).
MAX_PAGE_SIZE = 10000
DEFAULT_PAGE_SIZE = 100

#: Every event type the simulator produces, in a fixed order.
EVENT_TYPES: tuple[str, ...] = (
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
)


class _ApiError(Exception):
    """An error reply: ``{"status": "ERROR", "message": ...}`` with an HTTP status.

    :param status: the HTTP status of the reply.
    :param message: the ``message`` of the reply.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("login", re.compile(r"^/v1/sts/login/services/?$")),
    ("logout", re.compile(r"^/v1/sts/logout/?$")),
    ("organization_events", re.compile(r"^/v1/organizations/(?P<cid>[^/]+)/events/?$")),
    (
        "customer_events",
        re.compile(r"^/v1/organizations/(?P<cid>[^/]+)/customers/(?P<customer>[^/]+)/events/?$"),
    ),
    ("control", re.compile(r"^/_simulator/(?P<action>faults|stats|stats/reset|config)$")),
)


def _route(path: str) -> tuple[str, re.Match[str] | None]:
    """The endpoint name and match for ``path`` (``("unknown", None)`` when nothing matches)."""
    for endpoint, pattern in _ROUTES:
        match = pattern.match(path)
        if match is not None:
            return endpoint, match
    return "unknown", None


_METHODS = {
    "login": "POST",
    "logout": "POST",
    "organization_events": "GET",
    "customer_events": "GET",
}


def _bool_param(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _ApiError(400, f"{name} must be true or false, got {raw!r}")
