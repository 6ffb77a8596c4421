"""What the Cloud4Wi Explore Events API accepts: paths, limits, event types, query parameters.

Everything here is checked before a request is sent, so a mistake fails early with a message that
names the parameter, and nothing here knows about Airflow or HTTP sessions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

DEFAULT_BASE_URL = "https://explore.cloud4wi.com"
#: The largest ``size`` the Events endpoint accepts.
MAX_PAGE_SIZE = 10_000

#: The ten types of the public docs, plus those seen in its data example, in the docs' order.
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
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPES)

LOGIN_PATH = "/v1/sts/login/services"
LOGOUT_PATH = "/v1/sts/logout"

#: What an organization or customer id may be: it becomes a path segment of the request.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_id(value: Any, name: str) -> str:
    """
    Return ``value`` as an id fit for a URL path segment, or fail naming ``name``.

    :param value: the organization or customer id as given.
    :param name: the parameter's name, for the error message.
    """
    text = value if isinstance(value, str) else str(value)
    if not _ID_PATTERN.fullmatch(text):
        raise ValueError(
            f"{name} {text[:60]!r} is not an id: use 1 to 128 letters, digits, '-' or '_', starting with "
            "a letter or digit, as shown in the Cloud4Wi console."
        )
    return text


def check_customer_id(customer_id: str | None) -> None:
    """Refuse a customer id that is not None and not an id (``""`` included: None means all)."""
    if customer_id is not None:
        check_id(customer_id, "customer_id")


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
            f"event_types {event_types!r} holds no event type: give at least one event type, or None for all."
        )
    unknown = sorted(set(types) - KNOWN_EVENT_TYPES)
    if unknown:
        raise ValueError(f"Unknown event type(s) {unknown}; known types are {sorted(KNOWN_EVENT_TYPES)}.")
    return ",".join(dict.fromkeys(types))


def check_page_size(page_size: int, name: str = "page_size") -> None:
    """
    Refuse a page size the API does not accept (1 to ``MAX_PAGE_SIZE``).

    :param page_size: the ``size`` of each request.
    :param name: the parameter's name, for the error message.
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_PAGE_SIZE}, not {page_size!r}.")


#: The most requests one pull may send at once.
MAX_CONCURRENCY = 32


def check_concurrency(max_concurrency: int) -> None:
    """Refuse a ``max_concurrency`` that is not an integer from 1 to ``MAX_CONCURRENCY``."""
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not 1 <= max_concurrency <= MAX_CONCURRENCY
    ):
        raise ValueError(
            f"max_concurrency must be an integer from 1 to {MAX_CONCURRENCY} (1 pulls sequentially), "
            f"not {max_concurrency!r}."
        )


def events_path(organization_id: str, customer_id: str | None = None) -> str:
    """
    The path of an organization's events, or of one contact's events when ``customer_id`` is given.

    :param organization_id: the ``cid``, already checked with :func:`check_id`.
    :param customer_id: the contact, already checked, or None.
    """
    base = f"/v1/organizations/{quote(organization_id, safe='')}"
    if customer_id:
        return f"{base}/customers/{quote(str(customer_id), safe='')}/events"
    return f"{base}/events"


def query_params(
    date_start: str, date_end: str, types_param: str | None, size: int, *, scroll: bool = False
) -> dict[str, Any]:
    """
    The parameters of a fresh events query, oldest first.

    :param date_start: inclusive ``dateStart`` (whole second, UTC).
    :param date_end: inclusive ``dateEnd``.
    :param types_param: the ``events=`` filter from :func:`normalize_event_types`, or None.
    :param size: events per page.
    :param scroll: ask for a ``scrollId`` (the organization endpoint only).
    """
    params: dict[str, Any] = {
        "dateStart": date_start,
        "dateEnd": date_end,
        "size": size,
        "sortBy": "utcTime",
        "sortReverse": "false",
    }
    if types_param:
        params["events"] = types_param
    if scroll:
        params["enableScroll"] = "true"
    return params


def continuation_params(scroll_id: str, size: int) -> dict[str, Any]:
    """The parameters that ask for the next page of a scroll."""
    return {"scrollId": scroll_id, "size": size}
