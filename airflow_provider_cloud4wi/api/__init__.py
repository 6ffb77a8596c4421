"""The Cloud4Wi Explore Events API client: no Airflow in it, usable on its own.

``EventsClient`` (``api.client``) is the entry point; the Airflow hook builds one from a connection.
Names are loaded on first use, so that importing the light ``api.protocol`` (as the provider info
does while Airflow itself starts) does not import the client and Airflow with it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClientSettings": "settings",
    "Cloud4WiApiError": "errors",
    "Cloud4WiAuthError": "errors",
    "Cloud4WiTransientError": "errors",
    "DEFAULT_BASE_URL": "protocol",
    "EventPull": "pull",
    "EventsClient": "client",
    "KNOWN_EVENT_TYPES": "protocol",
    "MAX_PAGE_SIZE": "protocol",
    "PullStats": "pull",
    "RetryPolicy": "retry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
