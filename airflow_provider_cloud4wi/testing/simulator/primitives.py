"""Building blocks shared by the simulator: JSON text, 64-bit mixing and API date text."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.protocol import _ApiError

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = ["format_api_date"]

_API_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON."""
    if _orjson is not None:
        return _orjson.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _loads(data: bytes | str) -> Any:
    """Parse JSON text."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)


def _json_str(value: Any) -> str:
    """Compact JSON text of a static value, used to precompute template fragments."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a bijection on 64-bit integers with a good avalanche."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _hex_id(seed_key: int, label: str, digits: int = 32) -> str:
    """A deterministic hex identifier for a static object (location, campaign...)."""
    acc = seed_key
    out: list[str] = []
    for ch in label:
        acc = _mix64(acc ^ ord(ch))
    while len(out) * 16 < digits:
        acc = _mix64(acc ^ 0x5BD1E995)
        out.append(f"{acc:016x}")
    return "".join(out)[:digits]


def _epoch_seconds(value: dt.datetime, *, ceil: bool) -> int:
    """Whole seconds since the epoch of an aware datetime, rounded down or up, computed exactly."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware: {value!r}")
    delta = value - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    if ceil and delta.microseconds:
        seconds += 1
    return seconds


_HOURS = tuple(f"{h:02d}:" for h in range(24))
_MINUTES_SECONDS = tuple(f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))


class _IsoFormatter:
    """Formats epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ`` quickly (memoised day prefixes)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, seconds: int) -> str:
        day, second = divmod(seconds, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            if len(self._days) > 100_000:
                self._days.clear()
            date = dt.date.fromordinal(_EPOCH_ORDINAL + day)
            prefix = f"{date.year:04d}-{date.month:02d}-{date.day:02d}T"
            self._days[day] = prefix
        hour, rest = divmod(second, 3600)
        return prefix + _HOURS[hour] + _MINUTES_SECONDS[rest]


_iso = _IsoFormatter()
_CLOCK: list[bytes] = []
_CLOCK_LOCK = threading.Lock()


def _clock() -> list[bytes]:
    """``b"HH:MM:SSZ"`` for each second of a day (86400 entries, about 4 MB, built once)."""
    if not _CLOCK:
        with _CLOCK_LOCK:
            if not _CLOCK:
                table = [(hour + rest).encode() for hour in _HOURS for rest in _MINUTES_SECONDS]
                _CLOCK[:] = table  # one atomic assignment: readers see an empty or a full table
    return _CLOCK


def format_api_date(value: dt.datetime) -> str:
    """Format an aware datetime the way the API writes dates (whole seconds, ``Z``)."""
    return _iso(_epoch_seconds(value, ceil=False))


def _parse_api_date(name: str, raw: str) -> int:
    """Parse a strict ``YYYY-MM-DDTHH:MM:SSZ`` query value into epoch seconds."""
    match = _API_DATE.match(raw)
    if match is None:
        raise _ApiError(400, f"{name} must be formatted as YYYY-MM-DDTHH:MM:SSZ, got {raw!r}")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        value = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise _ApiError(400, f"{name} is not a valid date: {raw!r} ({exc})") from None
    return _epoch_seconds(value, ceil=False)
