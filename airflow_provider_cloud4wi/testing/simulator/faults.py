"""Fault injection settings and their seeded dice."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.primitives import _MASK64, _mix64

__all__ = ["Faults"]

_FAULT_RATES = (
    "rate_limit",
    "server_error",
    "connection_reset",
    "truncated_body",
    "lost_reply",
    "spurious_401",
    "duplicates",
    "scroll_expiry",
)
# Faults that are switched on rather than drawn per request (they ignore max_consecutive_faults).
_MODE_FAULTS = ("unauthorized_burst", "expired_token_403", "persistent_401", "concurrency_limit")
#: Every fault kind counted in the ``faults`` statistics.
_FAULT_KINDS = (*_FAULT_RATES, *_MODE_FAULTS)


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Faults:
    """Fault injection settings; every rate is a probability in ``[0, 1]`` per eligible request.

    * ``rate_limit``: 429; half of them carry ``Retry-After: retry_after``, half no header.
    * ``server_error``: 500, 502 or 503 with a JSON or an HTML body.
    * ``connection_reset``: the socket is reset without any reply; the scroll cursor does not move.
    * ``truncated_body``: (200 pages) full ``Content-Length`` but only half the body, then close;
      the cursor has moved.
    * ``lost_reply``: (scroll continuations) the cursor moves, then the connection closes silently.
    * ``spurious_401``: the token used is revoked and a 401 returned; never on the first events
      request made with a token, so logging in again always helps.
    * ``duplicates``: (scroll continuations) the page starts with the last 1 to 3 events of the
      previous page, then new ones: it still holds at most ``size`` events and the cursor moves by
      the new ones only. Not injected once a short page has shown that the stream is exhausted.
    * ``scroll_expiry``: (scroll continuations) the scroll is dropped and the 404 expiry reply sent.
    * ``expire_every_continuation``: every continuation gets the expiry reply (ignores the cap).
    * ``latency_ms``: sleep added to every API request (not to ``/_simulator`` control requests).
    * ``max_consecutive_faults``: never inject more faults than this in a row (0 = none at all).
    * ``unauthorized_burst``: after each login, the first ``k`` data requests made with the new
      token answer 401 (an API node that has not seen the token yet). The token stays valid: the
      next request with it succeeds, and a new login starts a new burst. Decided at login.
    * ``unauthorized_burst_rate``: while ``unauthorized_burst`` is 0, each login gets, with this
      probability (a seeded draw of its own), a burst of 1 to 3 such 401s.
    * ``expired_token_403``: a data request with an expired token answers 403 instead of 401, as
      some gateways do.
    * ``persistent_401``: login keeps succeeding, but every data request answers 401.
    * ``max_concurrent_requests``: beyond this many API requests in flight at once, a request
      answers 429 with ``Retry-After: retry_after`` (0 = no limit). A refused request does not
      count as in flight; ``latency_ms`` is spent inside the limit, so it makes requests overlap.

    The last five are modes rather than draws: they ignore ``max_consecutive_faults``, apply to
    the events endpoints only (not to login or logout) except ``max_concurrent_requests``, which
    applies to every API request, and are counted in the statistics like the others.

    ``rate_limit``, ``server_error`` and ``connection_reset`` are drawn first, before any check,
    and also apply to login; the others are drawn once the request is known to be valid. At most
    one fault hits a request: the rates of the faults eligible at a stage share one seeded uniform
    draw, so they add up (keep their sum at or below 1).
    """

    rate_limit: float = 0.0
    retry_after: int = 1
    server_error: float = 0.0
    connection_reset: float = 0.0
    truncated_body: float = 0.0
    lost_reply: float = 0.0
    spurious_401: float = 0.0
    duplicates: float = 0.0
    scroll_expiry: float = 0.0
    expire_every_continuation: bool = False
    latency_ms: float = 0.0
    max_consecutive_faults: int = 3
    unauthorized_burst: int = 0
    unauthorized_burst_rate: float = 0.0
    expired_token_403: bool = False
    persistent_401: bool = False
    max_concurrent_requests: int = 0

    def __post_init__(self) -> None:
        for name in (*_FAULT_RATES, "unauthorized_burst_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name} must be within [0, 1], got {rate}")
        if self.retry_after < 0 or self.latency_ms < 0 or self.max_consecutive_faults < 0:
            raise ValueError("retry_after, latency_ms and max_consecutive_faults must not be negative")
        if self.unauthorized_burst < 0 or self.max_concurrent_requests < 0:
            raise ValueError("unauthorized_burst and max_concurrent_requests must not be negative")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Faults:
        """Build from a mapping of field names to values (numbers, booleans or their text)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            kind = known[name].type
            if kind == "bool":
                kwargs[name] = _coerce_bool(value)
            elif isinstance(value, bool):
                raise ValueError(f"{name} must be a number, got {value!r}")
            elif kind == "int":
                kwargs[name] = int(value)
            else:
                kwargs[name] = float(value)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain JSON-compatible dict."""
        return dataclasses.asdict(self)


class _FaultDice:
    """Deterministic fault draws (a seeded counter hash) honouring ``max_consecutive_faults``."""

    def __init__(self, seed: int) -> None:
        self._key = _mix64(_mix64(seed & _MASK64) ^ 0xFA17)
        self._draws = 0
        self._consecutive = 0
        self._lock = threading.Lock()

    def draw(self, faults: Faults, candidates: Sequence[tuple[str, float]]) -> tuple[str | None, int]:
        """Pick at most one fault among ``candidates`` (name, rate); returns it and a spare hash."""
        if not any(rate > 0 for _, rate in candidates):
            return None, 0
        with self._lock:
            if self._consecutive >= faults.max_consecutive_faults:
                return None, 0
            self._draws += 1
            value = _mix64(self._draws ^ self._key)
            uniform = (value >> 11) / float(1 << 53)
            threshold = 0.0
            for name, rate in candidates:
                threshold += rate
                if uniform < threshold:
                    self._consecutive += 1
                    return name, _mix64(value)
            return None, 0

    def clean(self) -> None:
        """A request went through without a fault: the run of consecutive faults is over."""
        with self._lock:
            self._consecutive = 0


class _BurstDice:
    """Seeded draws of 401 burst lengths at login.

    Apart from :class:`_FaultDice` so that switching bursts on does not move the sequence of the
    other faults' draws.

    :param seed: the simulator's seed.
    """

    def __init__(self, seed: int) -> None:
        self._key = _mix64(_mix64(seed & _MASK64) ^ 0xB0257)
        self._draws = 0
        self._lock = threading.Lock()

    def length(self, faults: Faults) -> int:
        """How many 401s the token of a login now gets before it is accepted."""
        if faults.unauthorized_burst:
            return faults.unauthorized_burst
        if faults.unauthorized_burst_rate <= 0:
            return 0
        with self._lock:
            self._draws += 1
            value = _mix64(self._draws ^ self._key)
        if (value >> 11) / float(1 << 53) >= faults.unauthorized_burst_rate:
            return 0
        return 1 + (value & 0xFF) % 3
