"""The errors of the Cloud4Wi client, and what to check for each refused status."""

from __future__ import annotations

try:
    # Under Airflow the errors are AirflowExceptions, as callers of a provider expect; the client
    # itself needs nothing of Airflow and works without it.
    from airflow.exceptions import AirflowException as _ErrorBase
except ImportError:  # pragma: no cover - the package is always installed with Airflow
    _ErrorBase = Exception  # type: ignore[misc,assignment]


class Cloud4WiApiError(_ErrorBase):
    """The API refused a request in a way that retrying cannot fix (400, 401, 403, 404, ...)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class Cloud4WiAuthError(Cloud4WiApiError):
    """The credentials (or the pre-issued token) were refused, even after a fresh login."""


class Cloud4WiTransientError(_ErrorBase):
    """A failure worth retrying: 429, 5xx, a dropped connection, a timeout, a truncated body."""

    def __init__(self, reason: str, *, retry_after: float | None = None, immediate: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.immediate = immediate


class MalformedReply(Cloud4WiApiError):
    """A complete 200 reply that is not the JSON asked for (an HTML page, absurd nesting...)."""


class ScrollLost(Cloud4WiTransientError):
    """The server no longer knows the scroll (expired or unknown scrollId): resume with a fresh query."""


#: What to check when the API refuses a data request with this status.
REFUSAL_HINTS: dict[int, str] = {
    400: "The request was malformed; check event_types, page_size and the window.",
    403: "Check that the organization id is the {cid} the client key was issued for, and that the "
    "key has the organization_read and events_read scopes.",
    404: "Check the organization id and, for a contact's events, the customer id.",
}

LOGIN_REFUSED_HINT = (
    "Check the connection's login (client key) and password (client secret), and that the key "
    "is active in Manage > Developers > APIs."
)
FRESH_TOKEN_REFUSED_HINT = "A freshly issued token was refused too; check the key's role and scopes."
