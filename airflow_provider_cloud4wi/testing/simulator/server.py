"""The simulator: one object owning the dataset, the server state and the HTTP server thread."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.auth import _TokenAuthority
from airflow_provider_cloud4wi.testing.simulator.config import SimulatorConfig
from airflow_provider_cloud4wi.testing.simulator.dataset import EventDataset
from airflow_provider_cloud4wi.testing.simulator.events import _EventsEndpoint
from airflow_provider_cloud4wi.testing.simulator.faults import Faults, _BurstDice, _FaultDice
from airflow_provider_cloud4wi.testing.simulator.primitives import _loads, format_api_date
from airflow_provider_cloud4wi.testing.simulator.protocol import _ApiError
from airflow_provider_cloud4wi.testing.simulator.state import _InFlight, _PageCache, _ScrollStore, _Stats
from airflow_provider_cloud4wi.testing.simulator.transport import _Handler, _Server

__all__ = ["Cloud4WiSimulator"]

_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class Cloud4WiSimulator:
    """A Cloud4Wi Explore API simulator serving a deterministic dataset over real HTTP.

    ``Cloud4WiSimulator(config, **overrides)`` takes a :class:`SimulatorConfig` and/or its fields
    as keyword arguments. Use it as a context manager or call :meth:`start` / :meth:`stop`.

    :param config: the settings (the defaults of :class:`SimulatorConfig` when omitted).
    :param overrides: fields of :class:`SimulatorConfig` replacing those of ``config``.
    """

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        config = config or SimulatorConfig()
        if overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.dataset = EventDataset(
            seed=config.seed,
            organization_id=config.organization_id,
            data_start=config.data_start,
            data_end=config.data_end,
            events_per_hour=config.events_per_hour,
            customers=config.customers,
        )
        self._faults = config.faults
        self._tokens = _TokenAuthority(
            client_key=config.client_key,
            client_secret=config.client_secret,
            organization_id=config.organization_id,
            lifetime=config.token_lifetime,
            secret=config.jwt_secret or secrets.token_hex(32),
        )
        self._stats = _Stats()
        self._scrolls = _ScrollStore(config.scroll_ttl, self._stats)
        self._page_cache = _PageCache(config.page_cache_bytes)
        self._dice = _FaultDice(config.seed)
        self._bursts = _BurstDice(config.seed)
        self._in_flight = _InFlight(self._stats)
        self._events = _EventsEndpoint(
            dataset=self.dataset,
            tokens=self._tokens,
            scrolls=self._scrolls,
            page_cache=self._page_cache,
            dice=self._dice,
            stats=self._stats,
        )
        self._server: _Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> Cloud4WiSimulator:
        """Bind the socket and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = _Server((self.config.host, self.config.port), self, verbose=self.config.verbose)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="cloud4wi-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Cloud4WiSimulator:
        return self if self._server is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (known once :meth:`start` has run; kept after :meth:`stop`)."""
        if self._port is None:
            raise RuntimeError("simulator was never started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (after :meth:`start`)."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def organization_id(self) -> str:
        """The organization (``cid``) the simulated data belongs to."""
        return self.config.organization_id

    # -- runtime controls -------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The active fault settings (assign a new :class:`Faults` to change them)."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.set_faults(value)

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault settings; takes effect for the next request."""
        if not isinstance(faults, Faults):
            raise TypeError("faults must be a Faults instance")
        self._faults = faults

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (logins, requests per endpoint, faults per kind, scrolls...)."""
        snapshot = self._stats.snapshot()
        snapshot["scrolls_active"] = len(self._scrolls)
        snapshot["page_cache"] = self._page_cache.snapshot()
        return snapshot

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()
        self._page_cache.clear_counters()

    def issue_token(self) -> str:
        """A valid JWT for the configured client, as the login endpoint would return."""
        return self._tokens.issue()

    # -- ground truth -------------------------------------------------------------------------------

    def customer_ids(self) -> list[str]:
        """The ids of every simulated customer (contact)."""
        return self.dataset.customer_ids()

    def expected_events(
        self,
        window_start: dt.datetime,
        window_end: dt.datetime,
        *,
        customer_id: str | None = None,
        event_types: Iterable[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The documents with ``window_start <= createdAt < window_end``, in ``utcTime`` order.

        The window is half-open and may carry microseconds; the documents equal (as dicts) what
        the API serves. Lazy: fine for windows of millions of events.
        """
        selection = self.dataset.selection(
            window_start, window_end, customer_id=customer_id, event_types=event_types
        )
        return (self.dataset.event(index) for index in self.dataset.ordered(selection))

    def count_events(
        self,
        window_start: dt.datetime,
        window_end: dt.datetime,
        *,
        customer_id: str | None = None,
        event_types: Iterable[str] | None = None,
    ) -> int:
        """How many events :meth:`expected_events` yields (O(1) without a type filter)."""
        return self.dataset.count(
            self.dataset.selection(window_start, window_end, customer_id=customer_id, event_types=event_types)
        )

    # -- request handling -----------------------------------------------------------------------------

    def _handle(
        self, handler: _Handler, endpoint: str, method: str, params: dict[str, str], query: str, body: bytes
    ) -> None:
        if endpoint == "control":
            self._handle_control(handler, method, params["action"], body)
            return
        faults = self._faults
        with self._in_flight.admit(faults.max_concurrent_requests) as admitted:
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000.0)
            if not admitted:
                self._stats.fault("concurrency_limit")
                headers = {"Retry-After": str(faults.retry_after)}
                handler.send_json(
                    429, {"status": "ERROR", "message": "too many concurrent requests"}, headers=headers
                )
                return
            self._handle_api(handler, endpoint, params, query, body, faults)

    def _handle_api(
        self,
        handler: _Handler,
        endpoint: str,
        params: dict[str, str],
        query: str,
        body: bytes,
        faults: Faults,
    ) -> None:
        if endpoint == "logout":
            self._handle_logout(handler)
            return
        # Faults drawn before anything else is looked at (what a gateway in front would do).
        kind, spare = self._dice.draw(
            faults,
            [
                ("rate_limit", faults.rate_limit),
                ("server_error", faults.server_error),
                ("connection_reset", faults.connection_reset),
            ],
        )
        if kind is not None:
            self._inject_gateway_fault(handler, kind, spare, faults)
            return
        handler.fault_injected = False
        try:
            if endpoint == "login":
                self._handle_login(handler, body, faults)
            else:
                self._events.handle(handler, endpoint, params, query, faults)
        finally:
            if not handler.fault_injected:
                self._dice.clean()

    def _inject_gateway_fault(self, handler: _Handler, kind: str, spare: int, faults: Faults) -> None:
        self._stats.fault(kind)
        if kind == "rate_limit":
            headers = {"Retry-After": str(faults.retry_after)} if spare & 1 else None
            handler.send_json(429, {"status": "ERROR", "message": "too many requests"}, headers=headers)
        elif kind == "server_error":
            status = (500, 502, 503)[(spare >> 1) % 3]
            if (spare >> 3) & 1:
                handler.send_json(status, {"status": "ERROR", "message": "internal error, please retry"})
            else:
                reason = _REASONS[status]
                page = f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body>"
                handler.send_bytes(status, [page.encode()], content_type="text/html; charset=utf-8")
        else:
            handler.drop(reset=True)

    def _handle_control(self, handler: _Handler, method: str, action: str, body: bytes) -> None:
        if action == "faults":
            if method == "POST":
                try:
                    payload = _loads(body or b"{}")
                    if not isinstance(payload, dict):
                        raise ValueError("expected a JSON object")
                    self.set_faults(Faults.from_mapping(payload))
                except ValueError as exc:
                    raise _ApiError(400, f"invalid faults: {exc}") from None
            elif method != "GET":
                raise _ApiError(405, "use GET or POST")
            handler.send_json(200, self._faults.to_dict())
        elif action == "stats":
            if method != "GET":
                raise _ApiError(405, "use GET")
            handler.send_json(200, self.stats)
        elif action == "stats/reset":
            if method != "POST":
                raise _ApiError(405, "use POST")
            self.reset_stats()
            handler.send_json(200, {"status": "OK"})
        else:
            config = self.config
            handler.send_json(
                200,
                {
                    "organizationId": config.organization_id,
                    "clientKey": config.client_key,
                    "seed": config.seed,
                    "dataStart": format_api_date(config.data_start),
                    "dataEnd": format_api_date(config.data_end),
                    "eventsPerHour": config.events_per_hour,
                    "customers": config.customers,
                    "tokenLifetime": config.token_lifetime,
                    "scrollTtl": config.scroll_ttl,
                },
            )

    # -- authentication -------------------------------------------------------------------------

    def _handle_login(self, handler: _Handler, body: bytes, faults: Faults) -> None:
        if not self._tokens.check_login(body):
            self._stats.add("login_failures")
            raise _ApiError(401, "invalid client credentials")
        token = self._tokens.issue(refusals=self._bursts.length(faults))
        self._stats.add("logins")
        handler.send_json(200, {"token": token}, headers={"Authorization": f"Bearer {token}"})

    def _handle_logout(self, handler: _Handler) -> None:
        _, state = self._tokens.authenticate(handler.headers.get("Authorization"))
        state.revoked = True
        self._stats.add("logouts")
        handler.send_json(200, {"status": "OK"})
