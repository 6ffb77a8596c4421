"""The events endpoints: query parsing, first pages, scroll continuations and their faults."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from airflow_provider_cloud4wi.testing.simulator.auth import _TokenAuthority, _TokenState
from airflow_provider_cloud4wi.testing.simulator.dataset import EventDataset, _Selection
from airflow_provider_cloud4wi.testing.simulator.faults import Faults, _FaultDice
from airflow_provider_cloud4wi.testing.simulator.primitives import _mix64, _parse_api_date
from airflow_provider_cloud4wi.testing.simulator.protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    _ApiError,
    _bool_param,
)
from airflow_provider_cloud4wi.testing.simulator.state import (
    _TAIL_LENGTH,
    _Cursor,
    _Page,
    _PageCache,
    _Scroll,
    _ScrollStore,
    _Stats,
)
from airflow_provider_cloud4wi.testing.simulator.transport import _Handler
from airflow_provider_cloud4wi.testing.simulator.world import _TYPE_INDEX


class _EventsEndpoint:
    """Serves ``/v1/organizations/{cid}/events`` and its customer variant.

    :param dataset: the events served.
    :param tokens: verifies the bearer tokens.
    :param scrolls: the open scrolls.
    :param page_cache: rendered pages kept for re-use.
    :param dice: the fault draws.
    :param stats: the counters.
    """

    def __init__(
        self,
        *,
        dataset: EventDataset,
        tokens: _TokenAuthority,
        scrolls: _ScrollStore,
        page_cache: _PageCache,
        dice: _FaultDice,
        stats: _Stats,
    ) -> None:
        self.dataset = dataset
        self._tokens = tokens
        self._scrolls = scrolls
        self._page_cache = page_cache
        self._dice = dice
        self._stats = stats

    def _parse_selection(self, query: Mapping[str, str], slot: int | None) -> tuple[_Selection, int | None]:
        start = end = None
        if query.get("dateStart") is not None:
            start = _parse_api_date("dateStart", query["dateStart"])
        if query.get("dateEnd") is not None:
            end = _parse_api_date("dateEnd", query["dateEnd"])
        if start is not None and end is not None and start > end:
            raise _ApiError(400, "dateStart must not be after dateEnd")
        size = None
        if query.get("size") is not None:
            raw = query["size"]
            if not re.fullmatch(r"\d{1,9}", raw.strip()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
                raise _ApiError(400, f"size must be an integer between 1 and {MAX_PAGE_SIZE}, got {raw!r}")
            size = int(raw)
        types = None
        if query.get("events") is not None:
            names = [name.strip() for name in query["events"].split(",") if name.strip()]
            unknown = [name for name in names if name not in _TYPE_INDEX]
            if unknown:
                raise _ApiError(400, f"unknown event type(s) in events: {', '.join(unknown)}")
            types = frozenset(_TYPE_INDEX[name] for name in names) if names else None
        sort_by = query.get("sortBy", "businessTime")
        if sort_by not in ("businessTime", "utcTime"):
            raise _ApiError(400, f"sortBy must be businessTime or utcTime, got {sort_by!r}")
        reverse = _bool_param("sortReverse", query.get("sortReverse"))
        lo, hi = self.dataset.index_range(start, None if end is None else end + 1)
        return _Selection(lo, hi, slot, types, sort_by == "businessTime", reverse), size

    def handle(
        self, handler: _Handler, endpoint: str, params: dict[str, str], raw_query: str, faults: Faults
    ) -> None:
        """Answer one events request (a first page or a scroll continuation), faults included.

        :param handler: the HTTP request being answered.
        :param endpoint: ``organization_events`` or ``customer_events``.
        :param params: the path parameters (``cid``, and ``customer`` on the customer endpoint).
        :param raw_query: the query string.
        :param faults: the fault settings in force for this request.
        """
        claims, token = self._authenticate(handler, faults)
        if params["cid"] != claims["org"]:
            raise _ApiError(403, f"the token does not grant access to organization {params['cid']}")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        slot = None
        if endpoint == "customer_events":
            slot = self.dataset.customer_slot(params["customer"])
            if slot is None:
                raise _ApiError(404, f"customer {params['customer']} not found")
        scroll: _Scroll | None = None
        scroll_id = query.get("scrollId") if endpoint == "organization_events" else None
        if scroll_id is not None:
            scroll = self._scrolls.find(scroll_id, params["cid"])
            size_raw = query.get("size")
            if size_raw is not None and (not size_raw.strip().isdigit() or int(size_raw) != scroll.size):
                raise _ApiError(400, "size cannot change during a scroll")
            with scroll.lock:
                self._continue_scroll(handler, scroll, token, faults)
            return
        selection, size = self._parse_selection(query, slot)
        size = size or DEFAULT_PAGE_SIZE
        scrolling = endpoint == "organization_events" and _bool_param(
            "enableScroll", query.get("enableScroll")
        )
        kind = self._draw_request_fault(handler, faults, token, continuation=False, duplicable=False)
        if kind == "spurious_401":
            self._spurious_401(token)
        token.uses += 1
        cursor = _Cursor(selection, lambda: self.dataset.ordered(selection))
        page = self._take(cursor, size)
        new_scroll = None
        if scrolling:
            new_scroll = self._scrolls.open(params["cid"], size, cursor)
        self._reply_page(
            handler, page, new_scroll.scroll_id if new_scroll else None, truncate=kind == "truncated_body"
        )

    def _authenticate(self, handler: _Handler, faults: Faults) -> tuple[dict[str, Any], _TokenState]:
        """The token's claims and state, or the refusal an auth fault calls for."""
        try:
            claims, token = self._tokens.authenticate(
                handler.headers.get("Authorization"), expired_forbidden=faults.expired_token_403
            )
        except _ApiError as error:
            if error.status == 403:
                self._record_fault(handler, "expired_token_403")
            raise
        if faults.persistent_401:
            self._record_fault(handler, "persistent_401")
            raise _ApiError(401, "token not accepted")
        if self._tokens.refuse_once(token):
            self._record_fault(handler, "unauthorized_burst")
            raise _ApiError(401, "token not known yet")
        return claims, token

    def _record_fault(self, handler: _Handler, kind: str) -> None:
        handler.fault_injected = True
        self._stats.fault(kind)

    def _draw_request_fault(
        self, handler: _Handler, faults: Faults, token: _TokenState, *, continuation: bool, duplicable: bool
    ) -> str | None:
        """Draw the faults that need a valid request; at most one, recorded in the stats."""
        candidates = [("spurious_401", faults.spurious_401 if token.uses > 0 else 0.0)]
        if continuation:
            candidates += [("scroll_expiry", faults.scroll_expiry), ("lost_reply", faults.lost_reply)]
        candidates.append(("truncated_body", faults.truncated_body))
        if duplicable:
            candidates.append(("duplicates", faults.duplicates))
        kind, _ = self._dice.draw(faults, candidates)
        if kind is not None:
            self._record_fault(handler, kind)
        return kind

    def _spurious_401(self, token: _TokenState) -> None:
        token.revoked = True
        raise _ApiError(401, "token revoked")

    def _take(self, cursor: _Cursor, count: int) -> _Page:
        """The next ``count`` events of ``cursor`` (from the page cache when possible); advances it."""
        key = (cursor.selection.shape(), cursor.position, count)
        page = self._page_cache.get(key)
        if page is None:
            page = cursor.take(count, self.dataset.render_many)
            self._page_cache.put(key, page)
        cursor.position += page.count
        cursor.tail = page.tail
        cursor.exhausted = cursor.exhausted or page.count < count
        return page

    def _continue_scroll(
        self, handler: _Handler, scroll: _Scroll, token: _TokenState, faults: Faults
    ) -> None:
        cursor = scroll.cursor
        if faults.expire_every_continuation:
            handler.fault_injected = True
            self._stats.fault("scroll_expiry")
            self._scrolls.expire(scroll)
        duplicable = scroll.size > 1 and bool(cursor.tail) and not cursor.exhausted
        kind = self._draw_request_fault(handler, faults, token, continuation=True, duplicable=duplicable)
        if kind == "spurious_401":
            self._spurious_401(token)
        if kind == "scroll_expiry":
            self._scrolls.expire(scroll)
        token.uses += 1
        if kind == "duplicates":
            repeat = cursor.tail[-min(len(cursor.tail), scroll.size - 1, 1 + self._dice_spare(cursor) % 3) :]
            fresh = self._take(cursor, scroll.size - len(repeat))
            events = b",".join([*repeat, fresh.events]) if fresh.count else b",".join(repeat)
            page = _Page(len(repeat) + fresh.count, events, (*repeat, *fresh.tail)[-_TAIL_LENGTH:])
            cursor.tail = page.tail
        else:
            page = self._take(cursor, scroll.size)
        scroll.last_used = time.monotonic()
        if kind == "lost_reply":
            handler.drop(reset=False)
            return
        self._reply_page(handler, page, scroll.scroll_id, truncate=kind == "truncated_body")

    @staticmethod
    def _dice_spare(cursor: _Cursor) -> int:
        return _mix64(cursor.position)

    def _reply_page(self, handler: _Handler, page: _Page, scroll_id: str | None, *, truncate: bool) -> None:
        generated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        head = f'{{"status":"OK","generated":"{generated}","count":{page.count},'
        if scroll_id is not None:
            head += f'"scrollId":"{scroll_id}",'
        chunks = [head.encode() + b'"events":[', page.events, b"]}"]
        size = sum(len(chunk) for chunk in chunks)
        # counted before sending: a client reading the stats right after the reply sees them
        self._stats.add("pages_served")
        self._stats.add("events_served", page.count)
        self._stats.add("bytes_served", size // 2 if truncate else size)
        handler.send_bytes(200, chunks, truncate=truncate)

    # -- scrolls ------------------------------------------------------------------------------------
