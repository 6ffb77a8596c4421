"""The page loop of a pull: fresh queries and scroll continuations until the window is done.

Sequential or sliced (see ``api/parallel.py``), a pull ends the same way whatever goes wrong in
between: a lost scroll only ever falls back to a fresh query from the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_cloud4wi.api import protocol
from airflow_provider_cloud4wi.api.errors import (
    Cloud4WiApiError,
    Cloud4WiTransientError,
    MalformedReply,
    ScrollLost,
)
from airflow_provider_cloud4wi.api.limiter import AdaptiveLimiter
from airflow_provider_cloud4wi.api.logs import Log
from airflow_provider_cloud4wi.api.parallel import Slice, SlicedPull, Splitter
from airflow_provider_cloud4wi.api.pull import Delivery, Progress, PullStats, Scroll, TimeCursor, WindowFilter
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.windows import Window

_LOST_SCROLL_STATUSES = (400, 404, 410)
#: What a sliced pull's batches may hold, waiting for the consumer, beyond a page per worker (for
#: its request in flight): a few full pages of JSON lines, whatever the window holds.
BACKLOG_BYTES = 16 * 1024 * 1024
#: Bytes a parsed document is counted as in that budget (an event's JSON text is ~0.5 KB; its
#: dicts take a few times more).
_DOCUMENT_BYTES = 2048


def _weigh_documents(batch: list[Any]) -> int:
    return len(batch) * _DOCUMENT_BYTES


@dataclass(frozen=True)
class Query:
    """One pull's fixed parts: where, which events, how many per page."""

    path: str
    organization_id: str
    bounds: tuple[str, str]
    types_param: str | None
    page_size: int
    scroll: bool
    lines: bool
    limiter: AdaptiveLimiter | None = None


class PageLoop:
    """
    Pages through one pull's query under the retry policy.

    :param request: sends one authenticated request and returns its decoded body (the client's).
    :param retry: the retry policy of each page.
    :param log: where progress, resumes and retries are reported.
    :param progress_log_seconds: how often a long pull logs its progress at INFO.
    """

    def __init__(
        self, request: Callable[..., Any], retry: RetryPolicy, log: Log, progress_log_seconds: float
    ) -> None:
        self.request = request
        self.retry = retry
        self.log = log
        self.progress_log_seconds = progress_log_seconds

    def sliced(
        self, query: Query, window: Window, stats: PullStats, label: str, max_concurrency: int
    ) -> Iterator[Any]:
        """The pull of :meth:`pages` over time slices pulled at once (see ``api/parallel.py``)."""
        limited = replace(query, limiter=AdaptiveLimiter(max_concurrency, self.log))
        self.log.info("Pulling %s with up to %d requests at once.", label, max_concurrency)

        def pull_slice(piece: Slice, splitter: Splitter) -> Iterator[Any]:
            bounds = (piece.first, piece.last)
            piece_window = WindowFilter.for_seconds(window, *bounds)
            piece_query = replace(limited, bounds=bounds)
            return self.pages(piece_query, piece_window, piece.stats, label, splitter=splitter)

        first, last = query.bounds
        yield from SlicedPull(
            pull_slice,
            first,
            last,
            max_concurrency=max_concurrency,
            stats=stats,
            weigh=len if query.lines else _weigh_documents,
            backlog_bytes=BACKLOG_BYTES,
        )

    def pages(
        self,
        query: Query,
        window: WindowFilter,
        stats: PullStats,
        label: str,
        *,
        splitter: Splitter | None = None,
    ) -> Iterator[Any]:
        """
        Drive one pull: a scroll where the endpoint has one, else fresh queries from the time cursor.

        Both end the same way whatever goes wrong in between: every event of the window delivered
        once, because a lost scroll only ever falls back to a fresh query from the cursor. Yields
        one batch per page that brought anything new: a block of JSON lines (``bytes``, each line
        ending with a line break) with ``query.lines``, else a list of documents.
        """
        cursor = TimeCursor(query.bounds[0])
        delivery = Delivery(window, cursor, stats, self.log, label)
        scroll = Scroll(query.scroll)
        progress = Progress(label, stats, self.log, self.progress_log_seconds)
        while True:
            page, from_fresh_query = self._next_page(query, scroll, cursor, stats)
            events: list[Any] = page["events"]
            received = len(events)
            progress.page_arrived()
            delivered_before, second_before = stats.events, cursor.second
            batch = delivery.block(events) if query.lines else list(delivery.page(events, lines=False))
            # The reply is let go before the batch is handed on: a consumer that is slow to take
            # it then holds the batch only, not the page it came from as well.
            del page, events
            if batch:
                yield batch
            del batch  # nor the batch while the next page is fetched
            if not received:
                return
            progress.page_delivered(stats.events - delivered_before, cursor.second != second_before)
            if not from_fresh_query:
                continue
            # A short first page holds everything left. A full one that brought nothing new means
            # one second holds more events than a page, which paging by time cannot get past.
            if received < query.page_size:
                return
            if stats.events == delivered_before:
                raise Cloud4WiApiError(
                    f"A full page of {query.path} from {cursor.second} brought no new event: more "
                    f"than {query.page_size} events share that second, which paging by time cannot "
                    f"move past (raise page_size, up to {protocol.MAX_PAGE_SIZE}), or the server "
                    "ignores the query's time bounds."
                )
            # After a cut the slice goes on with a fresh query from the cursor's second, which
            # sends that second's events again: only when they fill under half a page does that
            # query move on; a busier second keeps its scroll instead.
            may_cut = 2 * len(cursor.ids_at_second) <= query.page_size
            new_last = splitter(second_before, cursor.second) if splitter and may_cut else None
            if new_last is not None:  # the rest of the range went to another slice
                query = replace(query, bounds=(query.bounds[0], new_last))
                window.shrink_to(new_last)
                scroll.take()  # the scroll would run past the new end: the next page is a fresh query

    def _next_page(
        self, query: Query, scroll: Scroll, cursor: TimeCursor, stats: PullStats
    ) -> tuple[dict[str, Any], bool]:
        """The next page under the retry policy, and whether it came from a fresh query."""

        def attempt() -> tuple[dict[str, Any], bool]:
            sent = scroll.take()  # a continuation that failed is never sent again
            page = (
                self._continuation(query, sent, cursor, stats) if sent else self._fresh_query(query, cursor)
            )
            if not isinstance(page, dict) or not isinstance(page.get("events"), list):
                raise Cloud4WiApiError(f"Unexpected reply from {query.path}: no 'events' list.")
            scroll.keep(page, sent)
            return page, sent is None

        def count_retry() -> None:
            stats.retries += 1

        try:
            return self.retry.run(f"events page {stats.pages + 1}", attempt, self.log, on_retry=count_retry)
        except MalformedReply as err:
            raise Cloud4WiApiError(f"Events page {stats.pages + 1}: {err}", http_status=200) from None

    def _fresh_query(self, query: Query, cursor: TimeCursor) -> Any:
        params = protocol.query_params(
            cursor.resume_from, query.bounds[1], query.types_param, query.page_size, scroll=query.scroll
        )
        return self.request(
            "GET",
            query.path,
            params=params,
            organization_id=query.organization_id,
            raw_events=query.lines,
            limiter=query.limiter,
        )

    def _continuation(self, query: Query, sent: str, cursor: TimeCursor, stats: PullStats) -> Any:
        params = protocol.continuation_params(sent, query.page_size)
        try:
            return self.request(
                "GET",
                query.path,
                params=params,
                organization_id=query.organization_id,
                raw_events=query.lines,
                limiter=query.limiter,
            )
        except Cloud4WiApiError as err:
            if err.http_status not in _LOST_SCROLL_STATUSES:
                raise
            stats.resumes += 1
            raise ScrollLost(
                f"scroll expired or unknown (HTTP {err.http_status}); resuming from {cursor.resume_from}",
                immediate=True,
            ) from None
        except Cloud4WiTransientError as err:
            stats.resumes += 1
            raise Cloud4WiTransientError(
                f"{err}; the scroll is abandoned and the pull resumes from {cursor.resume_from}",
                retry_after=err.retry_after,
            ) from None
