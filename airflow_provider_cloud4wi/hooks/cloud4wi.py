"""Cloud4WiHook: an Airflow connection turned into an :class:`EventsClient`, and its methods."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import requests

from airflow_provider_cloud4wi import connection
from airflow_provider_cloud4wi._compat import BaseHook, mask_secret
from airflow_provider_cloud4wi.api.auth import Token
from airflow_provider_cloud4wi.api.client import DEFAULT_MAX_CONCURRENCY, EventsClient
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError, Cloud4WiAuthError, Cloud4WiTransientError
from airflow_provider_cloud4wi.api.protocol import DEFAULT_BASE_URL, KNOWN_EVENT_TYPES, MAX_PAGE_SIZE
from airflow_provider_cloud4wi.api.pull import EventPull, PullStats
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import ClientSettings
from airflow_provider_cloud4wi.api.transport import HttpTransport

__all__ = [
    "DEFAULT_BASE_URL",
    "KNOWN_EVENT_TYPES",
    "MAX_PAGE_SIZE",
    "Cloud4WiApiError",
    "Cloud4WiAuthError",
    "Cloud4WiHook",
    "Cloud4WiTransientError",
    "PullStats",
]


class Cloud4WiHook(BaseHook):
    """
    Talk to the Cloud4Wi Explore API: log in with a client key/secret and page through events.

    The connection's ``host`` is the API base URL (default ``https://explore.cloud4wi.com``),
    ``login`` the client key and ``password`` the client secret. Its extra may hold
    ``organization_id`` (the ``cid``), ``token`` (a pre-issued JWT, used as is), ``timeout``
    (seconds), ``max_reply_mb`` (largest reply accepted, default 64) and ``allow_insecure_http``.
    The protocol itself lives in :class:`~airflow_provider_cloud4wi.api.client.EventsClient`,
    which this hook builds and delegates to.

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
    conn_type = connection.CONN_TYPE
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
        self.cloud4wi_conn_id = cloud4wi_conn_id
        self.retry_policy = RetryPolicy(
            max_attempts=max_attempts,
            max_retry_seconds=max_retry_seconds,
            retry_after_cap=retry_after_cap,
            wait_initial=retry_wait_initial,
            wait_max=retry_wait_max,
        )
        self.progress_log_seconds = progress_log_seconds

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide fields of the connection form (Airflow 2.11 reads this)."""
        return connection.ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.11 reads this; 3.2+ reads provider info)."""
        return connection.form_widgets()

    @cached_property
    def settings(self) -> ClientSettings:
        """The connection, read once and checked (no request is sent here)."""
        conn = self.get_connection(self.cloud4wi_conn_id)
        extra = conn.extra_dejson or {}

        def extra_value(name: str) -> Any:
            value = extra.get(name, extra.get(f"extra__{connection.CONN_TYPE}__{name}"))
            return None if value in ("", None) else value

        for pasted in (conn.password, extra_value("token")):  # also as pasted: Airflow may print those
            if pasted:
                mask_secret(str(pasted))
        settings = ClientSettings.from_parts(
            source=f"connection '{self.cloud4wi_conn_id}'",
            host=conn.host,
            port=conn.port,
            client_key=conn.login,
            client_secret=conn.password,
            token=extra_value("token"),
            organization_id=extra_value("organization_id"),
            timeout=extra_value("timeout"),
            allow_insecure_http=bool(extra_value("allow_insecure_http")),
            max_reply_mb=extra_value("max_reply_mb"),
        )
        for secret in settings.secrets:
            mask_secret(secret)
        return settings

    @cached_property
    def client(self) -> EventsClient:
        """The API client for this connection."""
        return EventsClient(
            self.settings,
            retry=self.retry_policy,
            transport=HttpTransport(self.settings),
            log=self.log,
            on_secret=lambda secret: mask_secret(secret),  # looked up at call time, so tests can patch it
            progress_log_seconds=self.progress_log_seconds,
        )

    @property
    def session(self) -> requests.Session:
        """The keep-alive HTTP session of this hook's requests."""
        transport = self.client.transport
        assert isinstance(transport, HttpTransport)
        return transport.session

    @property
    def _token(self) -> Token | None:
        return self.client.auth.token if "client" in self.__dict__ else None

    def get_token(self) -> str:
        """Return a valid JWT, logging in (with retries) when none is cached or it is about to expire."""
        return self.client.get_token()

    def logout(self) -> None:
        """Revoke the JWT this hook obtained by logging in (a pre-issued token is left alone)."""
        if "client" in self.__dict__:
            self.client.logout()

    def close(self) -> None:
        """Log out and close the HTTP session."""
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    def resolve_organization_id(self, organization_id: str | None = None) -> str:
        """
        Return ``organization_id``, else the connection's, else fail saying where to set one.

        :param organization_id: the ``cid`` given by the caller, if any.
        """
        return self.client.resolve_organization_id(organization_id)

    def iter_events(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> EventPull[dict[str, Any]]:
        """
        Yield every event created in ``[window_start, window_end)``, each once, oldest first.

        Documents are yielded exactly as the API returned them. Only one page is held at a time.
        A lost scroll (expired id, dropped reply, failed continuation) is never re-sent: the pull
        resumes with a fresh query from the last second it delivered, skipping what it already
        yielded at that second. The returned pull's ``stats`` say what it did.

        :param window_start: first instant included (aware datetime or ISO 8601 string).
        :param window_end: first instant excluded.
        :param event_types: restrict to these types (see ``KNOWN_EVENT_TYPES``).
        :param customer_id: only this contact's events (the per-contact endpoint).
        :param organization_id: the ``cid``; defaults to the connection's extra.
        :param page_size: events per request, 1 to 10000.
        :param max_concurrency: requests at once (1 to 32): the window is cut into time slices
            pulled in parallel, and cut again where events are dense; the events come in the same
            order as from a sequential pull. 1 pulls sequentially.
        """
        return self.client.iter_events(
            window_start,
            window_end,
            event_types=event_types,
            customer_id=customer_id,
            organization_id=organization_id,
            page_size=page_size,
            max_concurrency=max_concurrency,
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
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> EventPull[bytes]:
        """
        Yield the events of :meth:`iter_events` as lines: each one compact JSON document, UTF-8, no newline.

        The same events, in the same order, with the same de-duplication, window filter, resumes
        and retries. With msgspec installed, each page is validated whole but only the fields the
        pull reads (``event.type``, ``event.id``, ``when.createdAt``) are decoded, and each line is
        the API's own text of the event: no dicts are built and nothing is re-serialised (an event
        without those fields in their usual form is parsed in full and re-serialised, as without
        msgspec). Parameters as for :meth:`iter_events`.
        """
        return self.client.iter_event_lines(
            window_start,
            window_end,
            event_types=event_types,
            customer_id=customer_id,
            organization_id=organization_id,
            page_size=page_size,
            max_concurrency=max_concurrency,
        )

    def iter_event_blocks(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> EventPull[bytes]:
        """
        Yield the lines of :meth:`iter_event_lines` a page at a time, as blocks of JSON Lines text.

        Each block holds the new events of one page, every line ending with a line break, so a
        block can be written to a file or a compressor as it is: the fastest way to store a
        window. Parameters as for :meth:`iter_events`.
        """
        return self.client.iter_event_blocks(
            window_start,
            window_end,
            event_types=event_types,
            customer_id=customer_id,
            organization_id=organization_id,
            page_size=page_size,
            max_concurrency=max_concurrency,
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
        return self.client.count_events(
            window_start,
            window_end,
            limit=limit,
            event_types=event_types,
            customer_id=customer_id,
            organization_id=organization_id,
            max_attempts=max_attempts,
        )

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
