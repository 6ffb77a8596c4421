"""EventsClient: the Cloud4Wi Events API as a few methods, with nothing of Airflow in them."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import tenacity

from airflow_provider_cloud4wi.api import protocol, replies
from airflow_provider_cloud4wi.api.auth import TokenKeeper
from airflow_provider_cloud4wi.api.errors import (
    Cloud4WiApiError,
    Cloud4WiAuthError,
)
from airflow_provider_cloud4wi.api.limiter import AdaptiveLimiter
from airflow_provider_cloud4wi.api.logs import Log
from airflow_provider_cloud4wi.api.paging import PageLoop, Query
from airflow_provider_cloud4wi.api.pull import (
    Delivery,
    EventPull,
    PullStats,
    TimeCursor,
    WindowFilter,
)
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import ClientSettings
from airflow_provider_cloud4wi.api.transport import HttpTransport, Reply, Transport
from airflow_provider_cloud4wi.windows import Window

#: Fresh logins whose token a data request may see refused (401) before the refusal is final.
MAX_REFUSED_FRESH_LOGINS = 3
#: Requests a pull sends at once unless told otherwise.
DEFAULT_MAX_CONCURRENCY = 4
#: Requests sent with one fresh token while it is refused: a gateway may take a moment to know it.
TRIES_PER_FRESH_TOKEN = 4


def _lines_of_blocks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    for block in blocks:
        lines = block.split(b"\n")
        lines.pop()  # what follows the last line break: nothing
        yield from lines


class EventsClient:
    """
    Log in to the Cloud4Wi Explore API and read an organization's events, each exactly once.

    :param settings: where and with which credentials to connect.
    :param retry: how transient failures are retried.
    :param transport: sends the requests (default: HTTP with requests).
    :param log: where the client reports logins, retries and progress.
    :param on_secret: called with every token obtained (a secrets masker).
    :param progress_log_seconds: how often a long pull logs its progress at INFO.
    :param max_concurrency: requests a pull sends at once unless its call says otherwise.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        log: Log | None = None,
        on_secret: Callable[[str], None] = lambda secret: None,
        progress_log_seconds: float = 30.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        protocol.check_concurrency(max_concurrency)
        self.max_concurrency = max_concurrency
        self._sent = threading.local()  # the token each thread last sent, to renew only a refused one
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.transport: Transport = transport or HttpTransport(settings)
        self.log = log or logging.getLogger(__name__)
        self.auth = TokenKeeper(settings, self.transport, self.log, on_secret)
        self.progress_log_seconds = progress_log_seconds
        self._loop = PageLoop(self.request, self.retry, self.log, progress_log_seconds)

    # ------------------------------------------------------------------ requests
    def get_token(self) -> str:
        """A valid JWT, logging in (with retries) when none is held or it is about to expire."""
        return self.retry.run("login", self.auth.current, self.log)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        organization_id: str | None = None,
        raw_events: bool = False,
        limiter: AdaptiveLimiter | None = None,
    ) -> Any:
        """
        Send one authenticated request (no retries) and return its decoded JSON body.

        A 401 gets one fresh login and one repeat. Transient failures raise
        :class:`Cloud4WiTransientError`, the others :class:`Cloud4WiApiError`.

        :param organization_id: named in the message of a refusal.
        :param raw_events: leave each event of a page as its JSON text (see codec).
        :param limiter: the pull's limit on requests in flight, told of rate limits and successes.
        """
        with limiter.slot() if limiter else nullcontext() as held:
            reply = self._send_with_token(method, path, params)
            if reply.status_code == 401:
                reply = self._after_unauthorized(reply, method, path, params)
            elif reply.status_code == 403 and self.settings.can_login and not self.auth.holds_fresh_token:
                # Some gateways answer 403 for an expired or revoked token: one fresh login settles it.
                self.log.info(
                    "Cloud4Wi answered 403 on %s to a token that is not fresh; logging in again.", path
                )
                self.auth.renew(refused=self._sent.token)
                reply = self._send_with_token(method, path, params)
        if limiter is not None and held is not None:
            if reply.status_code == 429:
                limiter.rate_limited(replies.retry_after_seconds(reply), held)
            elif reply.status_code < 400:
                limiter.succeeded()
        return replies.decode(
            reply,
            method,
            path,
            raw_events=raw_events,
            organization_id=organization_id,
            source=self.settings.source,
            secrets=self.auth.secrets(),
        )

    def _send_with_token(self, method: str, path: str, params: dict[str, Any] | None) -> Reply:
        token = self.auth.current()
        self._sent.token = token
        headers = {"Authorization": f"Bearer {token}"}
        return self.transport.send(method, path, params=params, headers=headers)

    def _after_unauthorized(
        self, reply: Reply, method: str, path: str, params: dict[str, Any] | None
    ) -> Reply:
        """
        Log in again and repeat a request refused with 401, patiently: only the login judges keys.

        A data request refused with a token just issued may have reached an API node that does
        not know the token yet, so each fresh token is tried a few times with short waits before
        the next login; after a few fresh logins the refusal is final.
        """
        if not self.settings.can_login:
            raise Cloud4WiAuthError(
                f"Cloud4Wi refused the pre-issued token of {self.settings.source} "
                f"(HTTP 401: {replies.server_message(reply, self.auth.secrets())}). Issue a new one, or set "
                "the client key and secret as the connection's login and password so the hook can log in "
                "itself.",
                http_status=401,
            )
        for fresh_login in range(1, MAX_REFUSED_FRESH_LOGINS + 1):
            self.log.info(
                "Cloud4Wi answered 401 on %s; logging in again and repeating it (fresh login %d of %d).",
                path,
                fresh_login,
                MAX_REFUSED_FRESH_LOGINS,
            )
            self.auth.renew(refused=self._sent.token)
            reply = self._repeat_while_unauthorized(method, path, params)
            if reply.status_code != 401:
                break
        return reply  # a last 401 is decoded into the error that names the key's role and scopes

    def _repeat_while_unauthorized(self, method: str, path: str, params: dict[str, Any] | None) -> Reply:
        repeating = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda reply: reply.status_code == 401),
            stop=tenacity.stop_after_attempt(TRIES_PER_FRESH_TOKEN),
            wait=tenacity.wait_exponential(multiplier=self.retry.wait_initial, max=2.0),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        return repeating(self._send_with_token, method, path, params)

    def logout(self) -> None:
        """Revoke the JWT obtained by logging in (a pre-issued token is left alone)."""
        self.auth.logout()

    def close(self) -> None:
        """Log out and release the connections."""
        self.logout()
        self.transport.close()

    # ------------------------------------------------------------------ events
    def resolve_organization_id(self, organization_id: str | None = None) -> str:
        """
        Return ``organization_id``, else the settings', else fail saying where to set one.

        :param organization_id: the ``cid`` given by the caller, if any.
        """
        org = organization_id or self.settings.organization_id
        if not org:
            raise ValueError(
                f'No organization id: pass organization_id, or set "organization_id" in the extra of '
                f"{self.settings.source}."
            )
        return protocol.check_id(org, "organization_id")

    def iter_events(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        max_concurrency: int | None = None,
    ) -> EventPull[dict[str, Any]]:
        """
        Every event created in ``[window_start, window_end)``, each once, oldest first, as documents.

        :param window_start: first instant included (aware datetime or ISO 8601 string).
        :param window_end: first instant excluded.
        :param event_types: restrict to these types (see ``KNOWN_EVENT_TYPES``).
        :param customer_id: only this contact's events (the per-contact endpoint).
        :param organization_id: the ``cid``; defaults to the settings'.
        :param page_size: events per request, 1 to 10000.
        :param max_concurrency: requests at once: the window is cut into time slices pulled in
            parallel (and cut again where the events are dense), delivered in the same order as a
            sequential pull; 1 pulls sequentially. Default: the client's.
        """
        args = (window_start, window_end, event_types, customer_id, organization_id, page_size)
        return self._start(*args, max_concurrency, lines=False, each=itertools.chain.from_iterable)

    def iter_event_lines(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        max_concurrency: int | None = None,
    ) -> EventPull[bytes]:
        """The events of :meth:`iter_events` as compact JSON lines (the API's own text where it can)."""
        args = (window_start, window_end, event_types, customer_id, organization_id, page_size)
        return self._start(*args, max_concurrency, lines=True, each=_lines_of_blocks)

    def iter_event_blocks(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        *,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        organization_id: str | None = None,
        page_size: int = protocol.MAX_PAGE_SIZE,
        max_concurrency: int | None = None,
    ) -> EventPull[bytes]:
        """
        The lines of :meth:`iter_event_lines`, a page's worth at a time: each block is the new
        events of one page as JSON Lines text, every line ending with a line break. Writing
        whole blocks spares a consumer a Python step per event.
        """
        args = (window_start, window_end, event_types, customer_id, organization_id, page_size)
        return self._start(*args, max_concurrency, lines=True, each=iter)

    def _start(
        self, *args: Any, lines: bool, each: Callable[[Iterator[Any]], Iterator[Any]]
    ) -> EventPull[Any]:
        """A lazy pull of :meth:`_pull`'s batches, handed on by ``each``; nothing is requested yet."""
        stats = PullStats()
        batches = self._pull(*args, stats=stats, lines=lines)
        return EventPull(each(batches), stats, source=batches)

    def _pull(
        self,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        event_types: Sequence[str] | str | None,
        customer_id: str | None,
        organization_id: str | None,
        page_size: int,
        max_concurrency: int | None,
        *,
        stats: PullStats,
        lines: bool,
    ) -> Iterator[Any]:
        if max_concurrency is None:
            max_concurrency = self.max_concurrency
        window = Window.parse(window_start, window_end)
        protocol.check_page_size(page_size)
        protocol.check_concurrency(max_concurrency)
        types_param = protocol.normalize_event_types(event_types)
        org = self.resolve_organization_id(organization_id)
        protocol.check_customer_id(customer_id)
        bounds = window.api_bounds()
        if bounds is None:
            return
        self.log.info("Pulling Cloud4Wi events of organization %s in %s.", org, window)
        path = protocol.events_path(org, customer_id)
        # The per-contact endpoint has no scroll: the time cursor pages through it alone.
        query = Query(path, org, bounds, types_param, page_size, scroll=not customer_id, lines=lines)
        label = f"organization {org} in {window}"
        if max_concurrency == 1:
            yield from self._loop.pages(query, WindowFilter(window, bounds), stats, label)
        else:
            yield from self._loop.sliced(query, window, stats, label, max_concurrency)
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
        How many events the window holds, counting at most ``limit`` (one cheap request).

        :param limit: the most events to count (the request's ``size``), 1 to 10000.
        :param max_attempts: attempts before a transient failure is raised (default: the policy's).
        Other parameters as for :meth:`iter_events`.
        """
        window = Window.parse(window_start, window_end)
        protocol.check_page_size(limit)
        types_param = protocol.normalize_event_types(event_types)
        org = self.resolve_organization_id(organization_id)
        protocol.check_customer_id(customer_id)
        bounds = window.api_bounds()
        if bounds is None:
            return 0
        path = protocol.events_path(org, customer_id)
        params = protocol.query_params(bounds[0], bounds[1], types_param, limit)
        page = self.retry.run(
            "events count",
            lambda: self.request("GET", path, params=params, organization_id=org),
            self.log,
            max_attempts=max_attempts,
        )
        events = page.get("events") if isinstance(page, dict) else None
        if not isinstance(events, list):
            raise Cloud4WiApiError(f"Unexpected reply from {path}: no 'events' list.")
        delivery = Delivery(WindowFilter(window, bounds), TimeCursor(bounds[0]), PullStats(), self.log)
        return min(limit, sum(1 for _ in delivery.page(events, lines=False)))
