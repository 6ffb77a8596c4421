"""A local, deterministic simulator of the Cloud4Wi Explore API (events endpoints).

The simulator is a real HTTP/1.1 server (``http.server.ThreadingHTTPServer``) that speaks the
subset of the Explore API the provider uses: service login/logout with JWTs, the organization and
customer events endpoints with their query parameters and Elasticsearch-style scrolling. It needs
only the standard library and PyJWT; ``orjson`` is used when installed.

Protocol choices where the public documentation is silent
---------------------------------------------------------
* The end of a scroll is a ``200`` page with ``count: 0`` and ``events: []``; asking again keeps
  returning empty pages until the scroll expires.
* An unknown or expired ``scrollId`` gets ``404 {"status": "ERROR", "message": "scrollId not found
  or expired"}``. A scroll expires ``scroll_ttl`` seconds after its last use.
* ``dateStart``/``dateEnd`` filter ``when.createdAt`` (UTC) and are both inclusive. They are
  optional: a missing bound is open. ``dateStart`` after ``dateEnd`` is a ``400``.
* The customer endpoint ignores ``enableScroll`` and ``scrollId`` and never returns a ``scrollId``.
* A continuation (``scrollId``) ignores every other parameter but ``size``, which must then equal
  the scroll's size. ``events`` and ``sortBy`` values and booleans are checked strictly (400).

Control endpoints (no authentication, never faulty): ``GET``/``POST /_simulator/faults`` reads or
replaces the :class:`Faults` (a JSON object of its fields; missing fields take their defaults),
``GET /_simulator/stats`` returns the counters, ``POST /_simulator/stats/reset`` zeroes them and
``GET /_simulator/config`` describes the dataset.

Dataset formula
---------------
Events live on an endless timeline numbered from the Unix epoch; the configured data range only
selects the slice ``data_start <= createdAt < data_end`` of it (so changing the range never
changes an event). With ``E = events_per_hour`` (a multiple of 3) and ``B = E / 3`` bursts per
hour, event ``i`` (0-based, in ``createdAt`` order) has::

    hour  = i // E          # whole hours since 1970-01-01T00:00:00Z
    burst = (i % E) // 3    # bursts of 3 events share one second
    createdAt(i) = hour * 3600 + (burst * 3600) // B      (epoch seconds, UTC)

Burst 0 of every hour sits exactly on the hour boundary, each hour holds exactly ``E`` events,
and every burst puts 3 events in the same second (more when ``B > 3600``). The inverse, the first
index whose ``createdAt >= T``, is ``h, s = divmod(T, 3600); k = ceil(s * B / 3600)`` and then
``h * E + 3 * k`` if ``k < B`` else ``(h + 1) * E``: a date window maps to an index range in
O(1). Everything else about event ``i`` is a function of ``(seed, i)``:

* ``customer slot = i % customers``; the customer id is a seeded 64-bit bijection of the slot,
  so the events of one customer in ``[lo, hi)`` are the arithmetic progression of that residue.
* every customer has a home region (a time zone with its locations and geofences):
  ``region = (slot + shift(seed)) % len(REGIONS)``, so ``businessTime`` (local time) order differs
  from ``utcTime`` order and a region's events are again residues modulo ``customers``.
* random material comes from SHAKE-128 keyed by the seed, one call per block of 1024
  consecutive indices (``block = i >> 10``): 16 bytes per event make the event id (32 hex
  digits, plus a suffix letter, ``l`` location event or ``g`` geofence event, as in the docs'
  example; 128 random bits, so ids are unique in practice) and one 64-bit word ``h`` whose bits
  pick the type (13 types, weighted), the location or geofence, the hotspot, durations and the
  campaign, survey or promo object.

Nothing is stored per event: pages are rendered lazily from indices and a scroll keeps a
generator and a position, so a window of millions of events costs O(1) memory. ``businessTime``
order (``createdAtLocal``, then id) is produced window by window of local time: per region and
per stretch between two daylight-saving transitions the UTC offset is constant, so the events of
a local-time window are index ranges found by arithmetic, sorted a few thousand at a time.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo

import jwt

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_CLIENT_KEY",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORGANIZATION_ID",
    "EVENT_TYPES",
    "Cloud4WiSimulator",
    "EventDataset",
    "Faults",
    "SimulatorConfig",
    "main",
]

DEFAULT_ORGANIZATION_ID = "155d60f21dc1938562900a0e201d54f6"
DEFAULT_CLIENT_KEY = "sim-client-key"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
MAX_PAGE_SIZE = 10000
DEFAULT_PAGE_SIZE = 100

#: Every event type the simulator produces, in a fixed order.
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

# Relative frequency of each type, out of 1024 (the low 10 bits of the attribute hash).
_TYPE_WEIGHTS: dict[str, int] = {
    "signup": 24,
    "visit": 150,
    "login": 220,
    "promo": 40,
    "survey": 30,
    "send_email": 100,
    "open_email": 60,
    "click_email": 30,
    "send_sms": 50,
    "click_sms": 20,
    "arriving": 120,
    "geo_visit": 90,
    "geo_arriving": 90,
}
_TYPE_TABLE: tuple[int, ...] = tuple(
    itertools.chain.from_iterable([n] * _TYPE_WEIGHTS[name] for n, name in enumerate(EVENT_TYPES))
)
assert len(_TYPE_TABLE) == 1024
_TYPE_INDEX = {name: n for n, name in enumerate(EVENT_TYPES)}
_GEO_TYPES = frozenset(n for n, name in enumerate(EVENT_TYPES) if name.startswith("geo_"))

_API_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


# --------------------------------------------------------------------------------------------------
# JSON helpers (orjson when available)
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Hashing and time helpers
# --------------------------------------------------------------------------------------------------

_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a bijection on 64-bit integers with a good avalanche."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


_KIND_STATIC, _KIND_VISIT, _KIND_GEO_VISIT, _KIND_GEO_ARRIVING = range(4)
_BLOCK_SHIFT = 10  # events share their random material in blocks of 1024 consecutive indices
_BLOCK_SIZE = 1 << _BLOCK_SHIFT
_BLOCK_MASK = _BLOCK_SIZE - 1
_MAX_CACHED_BLOCKS = 256  # about 12 MB
_SORT_WINDOW_EVENTS = 4096  # businessTime order is sorted in windows of about this many events
_LOCAL_MARK = b'","createdAtLocal":"'
_START_LOCAL_MARK = b'","startAtLocal":"'
_VISIT_MARK_LOCATION = b'l","visit":{"startAt":"'
_VISIT_MARK_GEO = b'g","visit":{"startAt":"'


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


# --------------------------------------------------------------------------------------------------
# Static world: regions (time zones), locations, geofences, campaigns
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RegionSpec:
    """A time zone with its venues: (location name, hotspot count) and geofences."""

    timezone: str
    locations: tuple[tuple[str, int], ...]
    geofences: tuple[tuple[str, str, float, float, int], ...]  # name, ext id, lon, lat, radius


_REGION_SPECS: tuple[_RegionSpec, ...] = (
    _RegionSpec(
        "Europe/Rome",
        (("Caffè Torino", 2), ("Trattoria «Da Nennè»", 1)),
        (
            ("Piazza Castello", "torino-01", 7.686385, 45.071122, 150),
            ("Emi home", "Emilia", 10.517064, 43.675929, 100),
        ),
    ),
    _RegionSpec(
        "Europe/Zurich",
        (("Café Zürich", 2),),
        (("Zürich HB", "zrh-hb", 8.540192, 47.378177, 250),),
    ),
    _RegionSpec(
        "Europe/Berlin",
        (("Ünïcødé Straße", 1), ("Bäckerei Größenwahn", 2)),
        (("Alexanderplatz", "ber-alex", 13.41322, 52.521918, 300),),
    ),
    _RegionSpec(
        "America/Los_Angeles",
        (("Ivan Home", 1), ("Santa Mónica Pier Café", 2)),
        (("Venice Beach", "la-venice", -118.469483, 33.985047, 400),),
    ),
    _RegionSpec(
        "America/New_York",
        (("O'Brien's \"Pub\" \\ Bar", 1), ("Brooklyn Bagels", 1)),
        (("Bryant Park", "nyc-bryant", -73.983766, 40.753597, 200),),
    ),
    _RegionSpec(
        "Asia/Tokyo",
        (("東京 Shibuya", 3), ("大阪 梅田 Station", 1)),
        (("渋谷スクランブル交差点", "tyo-scramble", 139.700464, 35.659487, 80),),
    ),
    _RegionSpec(
        "Asia/Kolkata",
        (("मुंबई Central Lounge", 1),),
        (("Gateway of India", "bom-gateway", 72.834656, 18.921984, 120),),
    ),
    _RegionSpec(
        "Australia/Sydney",
        (("Bondi Beach Kiosk 🏄", 1),),
        (("Circular Quay", "syd-quay", 151.210886, -33.861406, 180),),
    ),
)

_SIGNUP_SOURCES = ("wifi", "wifi", "kiosk", "api")
_APP_VARIANTS = (("com.cloud4wi.toolkit", "android"), ("com.cloud4wi.toolkit", "ios"))
_CAMPAIGNS = (
    ("Saldi d'inverno ❄", "Fino al 50% di sconto"),
    ("Willkommen zurück", "Ihr Kaffee geht auf uns"),
    ("Weekend brunch", 'Book now & get a free "mimosa"'),
)
_SURVEY_ANSWERS = (("★☆☆☆☆", 1), ("★★☆☆☆", 2), ("★★★☆☆", 3), ("★★★★☆", 4), ("★★★★★", 5))
_PROMOS = ("Free Wi-Fi upgrade", "Due cappuccini al prezzo di uno", "Menú del día")


class _Region:
    """A region prepared for rendering: JSON fragments and the UTC offset timeline of its zone."""

    def __init__(self, spec: _RegionSpec, seed_key: int, span: tuple[int, int]) -> None:
        self.timezone = spec.timezone
        self.zone = ZoneInfo(spec.timezone)
        self.hotspot_wheres: list[str] = []  # where objects with a hotspot (login, arriving...)
        self.plain_wheres: list[str] = []  # where objects without hotspot (visit), same order
        for name, hotspots in spec.locations:
            location_id = _hex_id(seed_key, f"location:{name}")
            plain = {"locationId": location_id, "locationName": name}
            for n in range(hotspots):
                hotspot = dict(plain, hotspotId=_hex_id(seed_key, f"hotspot:{name}:{n}"))
                self.hotspot_wheres.append(_json_str(hotspot))
                self.plain_wheres.append(_json_str(plain))
        self.geo_wheres: list[str] = []
        for name, ext_id, lon, lat, radius in spec.geofences:
            geofence = {
                "geofenceName": name,
                "geofenceMetadata": [],
                "geofenceId": _hex_id(seed_key, f"geofence:{name}"),
                "geofenceExtId": ext_id,
                "geofenceJSON": {"type": "Circle", "coordinates": [lon, lat], "radius": radius},
            }
            self.geo_wheres.append(_json_str(geofence))
        self.app_properties = [
            _json_str(
                {
                    "appId": _hex_id(seed_key, f"app:{bundle}:{os_name}", 24),
                    "appBundle": bundle,
                    "projectId": _hex_id(seed_key, f"project:{bundle}", 24),
                    "appOs": os_name,
                }
            )
            for bundle, os_name in _APP_VARIANTS
        ]
        self.span = span
        self.transitions, self.offsets = self._offset_timeline(*span)
        self.fixed_offset: int | None = self.offsets[0] if not self.transitions else None

    def _zone_offset(self, seconds: int) -> int:
        offset = dt.datetime.fromtimestamp(seconds, self.zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())

    def _offset_timeline(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """UTC instants where the zone's offset changes inside [start, end], and the offsets."""
        transitions: list[int] = []
        offsets = [self._zone_offset(start)]
        probe = start
        while probe < end:
            nxt = min(probe + 86400, end)
            if self._zone_offset(nxt) != offsets[-1]:
                low, high = probe, nxt  # offset(low) is the old one, offset(high) the new one
                while high - low > 1:
                    mid = (low + high) // 2
                    if self._zone_offset(mid) == offsets[-1]:
                        low = mid
                    else:
                        high = mid
                transitions.append(high)
                offsets.append(self._zone_offset(high))
            probe = nxt
        return transitions, offsets

    def offset_at(self, seconds: int) -> int:
        """UTC offset in seconds of this region's zone at the epoch second ``seconds``."""
        if self.span[0] <= seconds <= self.span[1]:
            if self.fixed_offset is not None:
                return self.fixed_offset
            return self.offsets[bisect.bisect_right(self.transitions, seconds)]
        return self._zone_offset(seconds)


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


def _iter_residues(lo: int, hi: int, modulus: int, residues: Sequence[int], reverse: bool) -> Iterator[int]:
    """Yield the integers of ``[lo, hi)`` whose remainder modulo ``modulus`` is in ``residues``.

    ``residues`` must be sorted ascending. Lazy and O(1) in memory.
    """
    if lo >= hi or not residues:
        return
    if len(residues) == modulus:
        yield from (range(hi - 1, lo - 1, -1) if reverse else range(lo, hi))
        return
    if len(residues) == 1:
        residue = residues[0]
        if reverse:
            yield from range(hi - 1 - ((hi - 1 - residue) % modulus), lo - 1, -modulus)
        else:
            yield from range(lo + ((residue - lo) % modulus), hi, modulus)
        return
    first_block, last_block = lo // modulus, (hi - 1) // modulus
    if not reverse:
        for block in range(first_block, last_block + 1):
            base = block * modulus
            for residue in residues:
                index = base + residue
                if index >= hi:
                    return
                if index >= lo:
                    yield index
    else:
        backwards = residues[::-1]
        for block in range(last_block, first_block - 1, -1):
            base = block * modulus
            for residue in backwards:
                index = base + residue
                if index < lo:
                    return
                if index < hi:
                    yield index


def _count_residue(lo: int, hi: int, modulus: int, residue: int) -> int:
    """How many integers of ``[lo, hi)`` are congruent to ``residue`` modulo ``modulus``."""
    if hi <= lo:
        return 0
    return (hi - residue + modulus - 1) // modulus - (lo - residue + modulus - 1) // modulus


@dataclass(frozen=True)
class _Selection:
    """A resolved query: an index range, optional customer slot and type set, and the order."""

    lo: int
    hi: int
    slot: int | None = None
    types: frozenset[int] | None = None
    business_time: bool = False
    reverse: bool = False

    def shape(self) -> tuple[Any, ...]:
        """A hashable key identifying the ordered event stream (used by the page cache)."""
        types = tuple(sorted(self.types)) if self.types is not None else None
        return (self.lo, self.hi, self.slot, types, self.business_time, self.reverse)


class EventDataset:
    """The simulated events: a pure function of the seed and the event index (see module doc)."""

    def __init__(
        self,
        *,
        seed: int,
        organization_id: str,
        data_start: dt.datetime,
        data_end: dt.datetime,
        events_per_hour: int,
        customers: int,
    ) -> None:
        if events_per_hour <= 0 or events_per_hour % 3:
            raise ValueError(f"events_per_hour must be a positive multiple of 3, got {events_per_hour}")
        if customers < 1:
            raise ValueError(f"customers must be at least 1, got {customers}")
        start = _epoch_seconds(data_start, ceil=True)
        end = _epoch_seconds(data_end, ceil=True)
        if end < start:
            raise ValueError("data_end must not be before data_start")
        self.seed = seed
        self.organization_id = organization_id
        self.events_per_hour = events_per_hour
        self.customers = customers
        self._bursts = events_per_hour // 3
        self._hour_offsets = [((j // 3) * 3600) // self._bursts for j in range(events_per_hour)]
        seed_key = _mix64(seed & _MASK64)
        self._block_key = hashlib.sha256(f"cloud4wi-simulator:{seed}".encode()).digest()[:16]
        self._blocks: dict[int, tuple[bytes, array[int]]] = {}
        self._k_customer = (_mix64(seed_key ^ 0x3F), _mix64(seed_key ^ 0x40))
        self._regions = [
            _Region(spec, seed_key, (start - 2 * 86400, end + 2 * 86400)) for spec in _REGION_SPECS
        ]
        self._region_shift = seed_key % len(self._regions)
        self._prefix_cache: dict[int, tuple[bytes, bytes]] = {}
        self._day_cache: dict[int, bytes] = {}
        self._customer_slots: dict[str, int] | None = None
        self._lock = threading.Lock()
        self.lo = self.first_index_at_or_after(start)
        self.hi = self.first_index_at_or_after(end)
        self._build_variants(seed_key)

    # -- timeline ---------------------------------------------------------------------------------

    def created_at(self, index: int) -> int:
        """Epoch seconds (UTC) of event ``index``."""
        hour, slot = divmod(index, self.events_per_hour)
        return hour * 3600 + self._hour_offsets[slot]

    def first_index_at_or_after(self, seconds: int) -> int:
        """The smallest event index whose ``createdAt`` is ``>= seconds`` (O(1))."""
        hour, second = divmod(seconds, 3600)
        burst = -(-second * self._bursts // 3600)
        if burst >= self._bursts:
            return (hour + 1) * self.events_per_hour
        return hour * self.events_per_hour + 3 * burst

    def index_range(self, start: int | None, end_exclusive: int | None) -> tuple[int, int]:
        """Indices of the events with ``start <= createdAt < end_exclusive``, clipped to the data range."""
        lo = self.lo if start is None else max(self.lo, self.first_index_at_or_after(start))
        hi = self.hi if end_exclusive is None else min(self.hi, self.first_index_at_or_after(end_exclusive))
        return lo, max(lo, hi)

    # -- customers ------------------------------------------------------------------------------

    def customer_id(self, slot: int) -> str:
        """The 32-hex id of customer ``slot`` (0 <= slot < customers)."""
        k1, k2 = self._k_customer
        return f"{_mix64(slot ^ k1):016x}{_mix64(slot ^ k2):016x}"

    def customer_ids(self) -> list[str]:
        """Every customer id, by slot."""
        return [self.customer_id(slot) for slot in range(self.customers)]

    def customer_slot(self, customer_id: str) -> int | None:
        """The slot of ``customer_id``, or ``None`` when no such customer exists."""
        if self._customer_slots is None:
            with self._lock:
                if self._customer_slots is None:
                    self._customer_slots = {cid: slot for slot, cid in enumerate(self.customer_ids())}
        return self._customer_slots.get(customer_id)

    def _region_of_slot(self, slot: int) -> int:
        return (slot + self._region_shift) % len(self._regions)

    def _prefixes(self, slot: int) -> tuple[bytes, bytes]:
        """JSON prefixes (location event, geo event) with the organization and customer ids."""
        cached = self._prefix_cache.get(slot)
        if cached is None:
            if len(self._prefix_cache) > 100_000:
                self._prefix_cache.clear()
            customer = self.customer_id(slot)
            cached = (
                f'{{"organizationId":{_json_str(self.organization_id)},"customerId":"{customer}",'.encode(),
                f'{{"customerId":"{customer}",'.encode(),
            )
            self._prefix_cache[slot] = cached
        return cached

    # -- per-event attributes -------------------------------------------------------------------

    def _block(self, number: int) -> tuple[bytes, array[int]]:
        """Random material of the events ``number * 1024 ...``: id hex digits and attribute words.

        One SHAKE-128 call keyed by the seed yields 16 id bytes and one 64-bit attribute word per
        event; blocks are memoised (bounded), so random access stays cheap.
        """
        block = self._blocks.get(number)
        if block is None:
            material = number.to_bytes(12, "little", signed=True)
            digest = hashlib.shake_128(self._block_key + material).digest(_BLOCK_SIZE * 24)
            words = array("Q", digest[_BLOCK_SIZE * 16 :])
            if sys.byteorder == "big":
                words.byteswap()
            block = (digest[: _BLOCK_SIZE * 16].hex().encode(), words)
            if len(self._blocks) >= _MAX_CACHED_BLOCKS:
                self._blocks.clear()
            self._blocks[number] = block
        return block

    def _material(self, index: int) -> tuple[str, int]:
        """``(id hex, h)``: the 32 hex digits of the event id and the 64 attribute bits."""
        hexes, words = self._block(index >> _BLOCK_SHIFT)
        position = index & _BLOCK_MASK
        return hexes[position * 32 : position * 32 + 32].decode(), words[position]

    def type_of(self, index: int) -> str:
        """The event type of event ``index``."""
        return EVENT_TYPES[_TYPE_TABLE[self._material(index)[1] & 1023]]

    def event_id(self, index: int) -> str:
        """The ``event.id`` of event ``index`` (32 hex digits and a suffix letter)."""
        digits, h = self._material(index)
        return digits + ("g" if _TYPE_TABLE[h & 1023] in _GEO_TYPES else "l")

    @staticmethod
    def _type_objects(seed_key: int) -> dict[int, list[str]]:
        """JSON members (``"<object>":{...}``) of the types whose object does not depend on time."""
        out: dict[int, list[str]] = {}
        out[_TYPE_INDEX["signup"]] = [_json_str({"signup": {"source": s}})[1:-1] for s in _SIGNUP_SOURCES]
        for kind in ("email", "sms"):
            for action in ("send", "open", "click"):
                name = f"{action}_{kind}"
                if name not in _TYPE_INDEX:
                    continue
                variants = []
                for campaign, subject in _CAMPAIGNS:
                    body: dict[str, Any] = {
                        "campaignId": _hex_id(seed_key, f"campaign:{kind}:{campaign}", 24),
                        "campaignName": campaign,
                        "subject" if kind == "email" else "text": subject,
                    }
                    if action == "click":
                        body["url"] = f"https://example.com/c/{body['campaignId'][:8]}?utm_source={kind}"
                    variants.append(_json_str({kind: body})[1:-1])
                out[_TYPE_INDEX[name]] = variants
        survey_id = _hex_id(seed_key, "survey:satisfaction", 24)
        out[_TYPE_INDEX["survey"]] = [
            _json_str(
                {
                    "survey": {
                        "surveyId": survey_id,
                        "surveyName": "Guest satisfaction",
                        "question": "How was your visit?",
                        "answer": answer,
                        "score": score,
                    }
                }
            )[1:-1]
            for answer, score in _SURVEY_ANSWERS
        ]
        out[_TYPE_INDEX["promo"]] = [
            _json_str(
                {
                    "promo": {
                        "promoId": _hex_id(seed_key, f"promo:{name}", 24),
                        "promoName": name,
                        "callToAction": f"https://example.com/promo/{n}",
                    }
                }
            )[1:-1]
            for n, name in enumerate(_PROMOS)
        ]
        return out

    def _build_variants(self, seed_key: int) -> None:
        """Per (region, type): the static choices of an event, as data and as JSON template pieces.

        ``_variants[region][type]`` lists ``(where JSON, member JSON)`` pairs (the member is the type
        object for static types, the app ``properties`` for geo types, ``""`` otherwise);
        ``_middles`` holds, for the same positions, the JSON text that follows the dynamic part of
        ``event`` up to the opening quote of ``createdAt``. Bits 10.. of ``h`` pick the position.
        """
        objects = self._type_objects(seed_key)
        self._variants: list[list[list[tuple[str, str]]]] = []
        self._middles: list[list[list[bytes]]] = []
        for region in self._regions:
            region_variants: list[list[tuple[str, str]]] = []
            region_middles: list[list[bytes]] = []
            for type_no, name in enumerate(EVENT_TYPES):
                if type_no in _GEO_TYPES:
                    pairs = [(w, p) for w in region.geo_wheres for p in region.app_properties]
                    middles = [f',"properties":{p}}}}},"where":{w},"when":{{"createdAt":"' for w, p in pairs]
                elif name == "visit":
                    pairs = [(w, "") for w in region.plain_wheres]
                    middles = [f'}}}},"where":{w},"when":{{"createdAt":"' for w, _ in pairs]
                else:
                    members = objects.get(type_no, [""])
                    pairs = [(w, m) for w in region.hotspot_wheres for m in members]
                    middles = [
                        f'l"{"," + m if m else ""}}},"where":{w},"when":{{"createdAt":"' for w, m in pairs
                    ]
                region_variants.append(pairs)
                region_middles.append([middle.encode() for middle in middles])
            self._variants.append(region_variants)
            self._middles.append(region_middles)
        self._heads = [f'"event":{{"type":"{name}","id":"'.encode() for name in EVENT_TYPES]
        self._kinds = [
            _KIND_GEO_VISIT
            if name == "geo_visit"
            else _KIND_GEO_ARRIVING
            if name == "geo_arriving"
            else _KIND_VISIT
            if name == "visit"
            else _KIND_STATIC
            for name in EVENT_TYPES
        ]
        self._tz_tails = [f'","timezone":"{region.timezone}"}}}}'.encode() for region in self._regions]
        self._visit_zones = [f'","timezone":"{region.timezone}"'.encode() for region in self._regions]

    def _day_text(self, day: int) -> bytes:
        """``b"YYYY-MM-DDT"`` of the ``day``-th day since the epoch (memoised)."""
        text = self._day_cache.get(day)
        if text is None:
            if len(self._day_cache) > 10_000:
                self._day_cache.clear()
            text = self._day_cache[day] = _iso(day * 86400)[:11].encode()
        return text

    # -- rendering ------------------------------------------------------------------------------

    def render(self, index: int) -> str:
        """The JSON text of event ``index``."""
        return self.render_many((index,))[0].decode("utf-8")

    def render_many(self, indices: Iterable[int]) -> list[bytes]:
        """The UTF-8 JSON documents of the events ``indices``: the server's fast path.

        Events are assembled from pre-encoded template pieces with ``bytes.join`` (encoding text
        with non-ASCII names per event would cost more than everything else). Written flat on
        purpose, with local names and no helper calls in the common case.
        """
        blocks, load_block = self._blocks, self._block
        current_block, hexes, words = None, b"", array("Q")
        eph, hour_offsets = self.events_per_hour, self._hour_offsets
        customers, shift, regions = self.customers, self._region_shift, self._regions
        n_regions, lo, hi = len(regions), self.lo, self.hi
        table, kinds, heads, middles = _TYPE_TABLE, self._kinds, self._heads, self._middles
        tz_tails, visit_zones = self._tz_tails, self._visit_zones
        prefix_cache, prefixes = self._prefix_cache, self._prefixes
        days, day_text, clock = self._day_cache, self._day_text, _clock()
        join = b"".join
        out: list[bytes] = []
        append = out.append
        for index in indices:
            number = index >> _BLOCK_SHIFT
            if number != current_block:
                current_block = number
                hexes, words = blocks.get(number) or load_block(number)
            in_block = index & _BLOCK_MASK
            h = words[in_block]
            digits = hexes[in_block * 32 : in_block * 32 + 32]
            type_no = table[h & 1023]
            slot = index % customers
            region_no = (slot + shift) % n_regions
            region = regions[region_no]
            hour, in_hour = divmod(index, eph)
            created = hour * 3600 + hour_offsets[in_hour]
            fixed = region.fixed_offset if lo <= index < hi else None
            prefix = prefix_cache.get(slot) or prefixes(slot)
            options = middles[region_no][type_no]
            middle = options[(h >> 10) % len(options)]
            local = created + (region.offset_at(created) if fixed is None else fixed)
            day, second = divmod(created, 86400)
            local_day, local_second = divmod(local, 86400)
            when = join(
                (
                    days.get(day) or day_text(day),
                    clock[second],
                    _LOCAL_MARK,
                    days.get(local_day) or day_text(local_day),
                    clock[local_second],
                    tz_tails[region_no],
                )
            )
            kind = kinds[type_no]
            if kind == _KIND_STATIC:
                append(join((prefix[0], heads[type_no], digits, middle, when)))
                continue
            if kind == _KIND_GEO_ARRIVING:
                start, start_local, zone = created, local, visit_zones[region_no]
            else:
                duration = 1 + (h >> 22) % 240 if kind == _KIND_VISIT else (h >> 22) % 720
                start = created - duration * 60 - (h >> 42) % 60
                start_local = start + (region.offset_at(start) if fixed is None else fixed)
                zone = b'%s,"duration":%d' % (visit_zones[region_no], duration)
            day, second = divmod(start, 86400)
            local_day, local_second = divmod(start_local, 86400)
            append(
                join(
                    (
                        prefix[0] if kind == _KIND_VISIT else prefix[1],
                        heads[type_no],
                        digits,
                        _VISIT_MARK_LOCATION if kind == _KIND_VISIT else _VISIT_MARK_GEO,
                        days.get(day) or day_text(day),
                        clock[second],
                        _START_LOCAL_MARK,
                        days.get(local_day) or day_text(local_day),
                        clock[local_second],
                        zone,
                        middle,
                        when,
                    )
                )
            )
        return out

    def event(self, index: int) -> dict[str, Any]:
        """The document of event ``index`` built as a dict: the reference model of ``render``."""
        digits, h = self._material(index)
        type_no = _TYPE_TABLE[h & 1023]
        name = EVENT_TYPES[type_no]
        slot = index % self.customers
        region_no = self._region_of_slot(slot)
        region = self._regions[region_no]
        created = self.created_at(index)
        geo = type_no in _GEO_TYPES
        options = self._variants[region_no][type_no]
        where_json, member_json = options[(h >> 10) % len(options)]
        document: dict[str, Any] = {}
        if not geo:
            document["organizationId"] = self.organization_id
        document["customerId"] = self.customer_id(slot)
        event: dict[str, Any] = {"type": name, "id": digits + ("g" if geo else "l")}
        if name in ("visit", "geo_visit", "geo_arriving"):
            duration: int | None = None
            start = created
            if name != "geo_arriving":
                duration = 1 + (h >> 22) % 240 if name == "visit" else (h >> 22) % 720
                start = created - duration * 60 - (h >> 42) % 60
            visit: dict[str, Any] = {
                "startAt": _iso(start),
                "startAtLocal": _iso(start + region.offset_at(start)),
                "timezone": region.timezone,
            }
            if duration is not None:
                visit["duration"] = duration
            if geo:
                visit["properties"] = _loads(member_json)
            event["visit"] = visit
        elif member_json:
            event.update(_loads("{" + member_json + "}"))
        document["event"] = event
        document["where"] = _loads(where_json)
        document["when"] = {
            "createdAt": _iso(created),
            "createdAtLocal": _iso(created + region.offset_at(created)),
            "timezone": region.timezone,
        }
        return document

    # -- selections -------------------------------------------------------------------------------

    def _filtered(
        self, lo: int, hi: int, residues: Sequence[int], types: frozenset[int] | None, reverse: bool
    ) -> Iterator[int]:
        indices = _iter_residues(lo, hi, self.customers, residues, reverse)
        if types is None:
            return indices
        return self._of_types(indices, types)

    def _of_types(self, indices: Iterable[int], types: frozenset[int]) -> Iterator[int]:
        current_block, words = None, array("Q")
        for index in indices:
            number = index >> _BLOCK_SHIFT
            if number != current_block:
                current_block, words = number, self._block(number)[1]
            if _TYPE_TABLE[words[index & _BLOCK_MASK] & 1023] in types:
                yield index

    def _slot_residues(self, slot: int | None) -> Sequence[int]:
        return range(self.customers) if slot is None else (slot,)

    def ordered(self, selection: _Selection) -> Iterator[int]:
        """Lazily yield the indices of ``selection`` in the order the API serves them."""
        if not selection.business_time:
            return self._filtered(
                selection.lo,
                selection.hi,
                self._slot_residues(selection.slot),
                selection.types,
                selection.reverse,
            )
        return self._business_order(selection)

    def _business_order(self, selection: _Selection) -> Iterator[int]:
        """Order by (createdAtLocal, id), lazily, one window of local time at a time.

        The selection is cut into pieces with one constant UTC offset each (a region's events
        between two daylight-saving transitions). A window ``[L, L + width)`` of local time holds,
        for every piece, the events with ``createdAt`` in ``[L - offset, L + width - offset)``: an
        index range found by arithmetic. Each window (a few thousand events) is sorted on its own,
        so memory stays bounded whatever the size of the selection.
        """
        lo, hi, reverse, types = selection.lo, selection.hi, selection.reverse, selection.types
        if lo >= hi:
            return
        pieces = list(self._constant_offset_pieces(selection))
        if not pieces:
            return
        local_lo = min(self.created_at(start) + offset for start, _, _, offset in pieces)
        local_hi = max(self.created_at(end - 1) + offset for _, end, _, offset in pieces) + 1
        width = max(1, -(-_SORT_WINDOW_EVENTS * 3600 // self.events_per_hour))
        windows = range(local_lo, local_hi, width)
        eph, hour_offsets, first_index = (
            self.events_per_hour,
            self._hour_offsets,
            self.first_index_at_or_after,
        )
        current_block, hexes = None, b""
        for window in reversed(windows) if reverse else windows:
            batch: list[tuple[int, bytes, int]] = []
            append = batch.append
            for start, end, residues, offset in pieces:
                first = max(start, first_index(window - offset))
                last = min(end, first_index(window + width - offset))
                if first >= last:
                    continue
                for index in self._filtered(first, last, residues, types, False):
                    number = index >> _BLOCK_SHIFT
                    if number != current_block:
                        current_block, hexes = number, self._block(number)[0]
                    hour, in_hour = divmod(index, eph)
                    in_block = (index & _BLOCK_MASK) * 32
                    append(
                        (hour * 3600 + hour_offsets[in_hour] + offset, hexes[in_block : in_block + 32], index)
                    )
            batch.sort(reverse=reverse)
            for item in batch:
                yield item[2]

    def _constant_offset_pieces(self, selection: _Selection) -> Iterator[tuple[int, int, Sequence[int], int]]:
        """``(lo, hi, customer residues, UTC offset)``: per region, its stretches without transition."""
        lo, hi = selection.lo, selection.hi
        n_regions = len(self._regions)
        first_second, last_second = self.created_at(lo), self.created_at(hi - 1)
        for number, region in enumerate(self._regions):
            first_slot = (number - self._region_shift) % n_regions
            residues: Sequence[int] = range(first_slot, self.customers, n_regions)
            if selection.slot is not None:
                residues = (selection.slot,) if selection.slot in residues else ()
            if not residues:
                continue
            cuts = [
                self.first_index_at_or_after(instant)
                for instant in region.transitions
                if first_second < instant <= last_second
            ]
            for start, end in itertools.pairwise([lo, *cuts, hi]):
                if start < end:
                    yield start, end, residues, region.offset_at(self.created_at(start))

    def count(self, selection: _Selection) -> int:
        """Number of events in ``selection`` (arithmetic unless a type filter forces a scan)."""
        if selection.types is None:
            if selection.slot is None:
                return max(0, selection.hi - selection.lo)
            return _count_residue(selection.lo, selection.hi, self.customers, selection.slot)
        return sum(1 for _ in self.ordered(dataclasses.replace(selection, business_time=False)))

    def selection(
        self,
        window_start: dt.datetime,
        window_end: dt.datetime,
        *,
        customer_id: str | None = None,
        event_types: Iterable[str] | None = None,
    ) -> _Selection:
        """The half-open window ``[window_start, window_end)`` (aware datetimes) as a selection."""
        lo, hi = self.index_range(
            _epoch_seconds(window_start, ceil=True), _epoch_seconds(window_end, ceil=True)
        )
        slot = None
        if customer_id is not None:
            slot = self.customer_slot(customer_id)
            if slot is None:
                raise ValueError(f"unknown customer id {customer_id!r}")
        types = None
        if event_types is not None:
            unknown = sorted(set(event_types) - set(EVENT_TYPES))
            if unknown:
                raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
            types = frozenset(_TYPE_INDEX[name] for name in event_types)
        return _Selection(lo, hi, slot, types)


# --------------------------------------------------------------------------------------------------
# Configuration and faults
# --------------------------------------------------------------------------------------------------

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

    def __post_init__(self) -> None:
        for name in _FAULT_RATES:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name} must be within [0, 1], got {rate}")
        if self.retry_after < 0 or self.latency_ms < 0 or self.max_consecutive_faults < 0:
            raise ValueError("retry_after, latency_ms and max_consecutive_faults must not be negative")

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


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of a simulator instance (see the module docstring for the dataset formula).

    ``data_end`` is exclusive. ``token_lifetime`` and ``scroll_ttl`` are in seconds;
    ``page_cache_bytes`` bounds the cache of rendered pages (0 disables it). ``jwt_secret`` defaults
    to a random key per instance.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    organization_id: str = DEFAULT_ORGANIZATION_ID
    client_key: str = DEFAULT_CLIENT_KEY
    client_secret: str = DEFAULT_CLIENT_SECRET
    data_start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    data_end: dt.datetime = dt.datetime(2024, 1, 8, tzinfo=dt.timezone.utc)
    events_per_hour: int = 120
    customers: int = 50
    token_lifetime: float = 86400.0
    scroll_ttl: float = 120.0
    page_cache_bytes: int = 0
    faults: Faults = field(default_factory=Faults)
    verbose: bool = False
    jwt_secret: str | None = None

    def __post_init__(self) -> None:
        for name in ("data_start", "data_end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be a timezone-aware datetime")
        if self.data_end < self.data_start:
            raise ValueError("data_end must not be before data_start")
        if self.events_per_hour <= 0 or self.events_per_hour % 3:
            raise ValueError(
                f"events_per_hour must be a positive multiple of 3 (events come in bursts of 3), "
                f"got {self.events_per_hour}"
            )
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.token_lifetime <= 0 or self.scroll_ttl <= 0:
            raise ValueError("token_lifetime and scroll_ttl must be positive")
        if self.page_cache_bytes < 0:
            raise ValueError("page_cache_bytes must not be negative")


# --------------------------------------------------------------------------------------------------
# Server-side state: errors, tokens, scrolls, page cache, fault dice, statistics
# --------------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """An error reply: ``{"status": "ERROR", "message": ...}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _TokenState:
    uses: int = 0
    revoked: bool = False


@dataclass
class _Page:
    """Rendered events: their count, the comma-joined JSON, and the last few events alone."""

    count: int
    events: bytes
    tail: tuple[bytes, ...]

    @property
    def size_bytes(self) -> int:
        return len(self.events) + sum(len(item) for item in self.tail) + 64


_EMPTY_PAGE = _Page(0, b"", ())
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_TAIL_LENGTH = 5


class _Cursor:
    """A position in an ordered event stream; the generator is created and advanced lazily."""

    def __init__(self, selection: _Selection, make_iterator: Callable[[], Iterator[int]]) -> None:
        self.selection = selection
        self._make_iterator = make_iterator
        self._iterator: Iterator[int] | None = None
        self._generated = 0  # how many events the generator has yielded
        self.position = 0  # how many distinct events were handed out
        self.exhausted = False  # a page came back short: the stream has ended
        self.tail: tuple[bytes, ...] = ()  # last events of the previous page

    def take(self, count: int, render: Callable[[Iterable[int]], list[bytes]]) -> _Page:
        """Render the next ``count`` events at ``position`` (without moving ``position``)."""
        if self._iterator is None:
            self._iterator = self._make_iterator()
        if self._generated < self.position:
            deque(itertools.islice(self._iterator, self.position - self._generated), maxlen=0)
            self._generated = self.position
        documents = render(itertools.islice(self._iterator, count))
        self._generated += len(documents)
        if not documents:
            return _EMPTY_PAGE
        return _Page(len(documents), b",".join(documents), tuple(documents[-_TAIL_LENGTH:]))


@dataclass
class _Scroll:
    scroll_id: str
    organization_id: str
    size: int
    cursor: _Cursor
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class _PageCache:
    """LRU cache of rendered pages keyed by (stream shape, position, count), bounded in bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[Any, ...], _Page] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> _Page | None:
        if self.capacity <= 0:
            return None
        with self._lock:
            page = self._entries.get(key)
            if page is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: tuple[Any, ...], page: _Page) -> None:
        size = page.size_bytes
        if self.capacity <= 0 or size > self.capacity:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.size_bytes
            self._entries[key] = page
            self._bytes += size
            while self._bytes > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size_bytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._entries),
                "bytes": self._bytes,
            }

    def clear_counters(self) -> None:
        with self._lock:
            self.hits = self.misses = 0


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


class _Stats:
    """Thread-safe counters exposed as ``Cloud4WiSimulator.stats`` and ``GET /_simulator/stats``."""

    ENDPOINTS = ("login", "logout", "organization_events", "customer_events", "control", "unknown")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counters: dict[str, int] = {
                "logins": 0,
                "login_failures": 0,
                "logouts": 0,
                "scrolls_opened": 0,
                "scrolls_expired": 0,
                "pages_served": 0,
                "events_served": 0,
                "bytes_served": 0,
            }
            self._requests = dict.fromkeys(self.ENDPOINTS, 0)
            self._faults = dict.fromkeys(_FAULT_RATES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self._counters, "requests": dict(self._requests), "faults": dict(self._faults)}


# --------------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------------

_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("login", re.compile(r"^/v1/sts/login/services/?$")),
    ("logout", re.compile(r"^/v1/sts/logout/?$")),
    ("organization_events", re.compile(r"^/v1/organizations/(?P<cid>[^/]+)/events/?$")),
    (
        "customer_events",
        re.compile(r"^/v1/organizations/(?P<cid>[^/]+)/customers/(?P<customer>[^/]+)/events/?$"),
    ),
    ("control", re.compile(r"^/_simulator/(?P<action>faults|stats|stats/reset|config)$")),
)


def _route(path: str) -> tuple[str, re.Match[str] | None]:
    """The endpoint name and match for ``path`` (``("unknown", None)`` when nothing matches)."""
    for endpoint, pattern in _ROUTES:
        match = pattern.match(path)
        if match is not None:
            return endpoint, match
    return "unknown", None


_METHODS = {
    "login": "POST",
    "logout": "POST",
    "organization_events": "GET",
    "customer_events": "GET",
}


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its simulator and can drop its open connections."""

    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Cloud4WiSimulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down idle keep-alive connections so their threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the simulator."""

    protocol_version = "HTTP/1.1"
    server_version = "Cloud4WiSimulator/1.0"
    timeout = 300
    server: _Server
    fault_injected = False

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.simulator.config.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        raw_path, _, query = self.path.partition("?")
        path = "/" + raw_path.lstrip("/")
        simulator = self.server.simulator
        endpoint, match = _route(path)
        simulator._stats.request(endpoint)
        if match is None:
            self.send_json(404, {"status": "ERROR", "message": f"no route for {method} {path}"})
            return
        params = {name: unquote(value) for name, value in match.groupdict().items()}
        try:
            expected = _METHODS.get(endpoint)
            if expected is not None and method != expected:
                raise _ApiError(405, f"method {method} not allowed on {path}")
            simulator._handle(self, endpoint, method, params, query, body)
        except _ApiError as error:
            self.send_json(error.status, {"status": "ERROR", "message": error.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulator: say so loudly, keep serving
            self.log_error("simulator failure on %s: %r", self.path, exc)
            traceback.print_exc()
            self.send_json(500, {"status": "ERROR", "message": f"simulator failure: {exc!r}"})

    # -- replies ----------------------------------------------------------------------------------

    def send_bytes(
        self,
        status: int,
        chunks: Sequence[bytes],
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        """Send a reply made of ``chunks``; with ``truncate`` only half of it, then close."""
        length = sum(len(chunk) for chunk in chunks)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            data = b"".join(chunks)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        for chunk in chunks:
            if chunk:
                self.wfile.write(chunk)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send a JSON reply."""
        self.send_bytes(status, [_dumps(payload)], headers=headers)

    def drop(self, reset: bool) -> None:
        """Close the connection without a reply (an RST with ``reset``, else an orderly close)."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------


def _bool_param(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _ApiError(400, f"{name} must be true or false, got {raw!r}")


class Cloud4WiSimulator:
    """A Cloud4Wi Explore API simulator serving a deterministic dataset over real HTTP.

    ``Cloud4WiSimulator(config, **overrides)`` takes a :class:`SimulatorConfig` and/or its fields
    as keyword arguments. Use it as a context manager or call :meth:`start` / :meth:`stop`.
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
        self._jwt_secret = config.jwt_secret or secrets.token_hex(32)
        self._tokens: dict[str, _TokenState] = {}
        self._tokens_lock = threading.Lock()
        self._scrolls: dict[str, _Scroll] = {}
        self._scrolls_lock = threading.Lock()
        self._page_cache = _PageCache(config.page_cache_bytes)
        self._dice = _FaultDice(config.seed)
        self._stats = _Stats()
        self._server: _Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> Cloud4WiSimulator:
        """Bind the socket and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = _Server((self.config.host, self.config.port), self)
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
        with self._scrolls_lock:
            snapshot["scrolls_active"] = len(self._scrolls)
        snapshot["page_cache"] = self._page_cache.snapshot()
        return snapshot

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()
        self._page_cache.clear_counters()

    def issue_token(self) -> str:
        """A valid JWT for the configured client, as the login endpoint would return."""
        issued = int(time.time())
        jti = secrets.token_hex(16)
        claims = {
            "sub": self.config.client_key,
            "org": self.config.organization_id,
            "iat": issued,
            "exp": issued + math.ceil(self.config.token_lifetime),
            "jti": jti,
        }
        with self._tokens_lock:
            self._tokens[jti] = _TokenState()
        return jwt.encode(claims, self._jwt_secret, algorithm="HS256")

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
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
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
                self._handle_login(handler, body)
            else:
                self._handle_events(handler, endpoint, params, query, faults)
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

    def _handle_login(self, handler: _Handler, body: bytes) -> None:
        try:
            payload = _loads(body)
        except ValueError:
            raise _ApiError(400, "request body must be JSON") from None
        if not isinstance(payload, dict) or not {"clientKey", "clientSecret"} <= payload.keys():
            raise _ApiError(400, "clientKey and clientSecret are required")
        key, secret = payload["clientKey"], payload["clientSecret"]
        if not (
            isinstance(key, str)
            and isinstance(secret, str)
            and secrets.compare_digest(key.encode(), self.config.client_key.encode())
            and secrets.compare_digest(secret.encode(), self.config.client_secret.encode())
        ):
            self._stats.add("login_failures")
            raise _ApiError(401, "invalid client credentials")
        token = self.issue_token()
        self._stats.add("logins")
        handler.send_json(200, {"token": token}, headers={"Authorization": f"Bearer {token}"})

    def _authenticate(self, handler: _Handler) -> tuple[dict[str, Any], _TokenState]:
        header = handler.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _ApiError(401, "missing bearer token")
        try:
            claims = jwt.decode(
                token.strip(),
                self._jwt_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "sub", "org", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise _ApiError(401, "token expired") from None
        except jwt.InvalidTokenError:
            raise _ApiError(401, "invalid token") from None
        with self._tokens_lock:
            state = self._tokens.setdefault(str(claims["jti"]), _TokenState())
        if state.revoked:
            raise _ApiError(401, "token revoked")
        return claims, state

    def _handle_logout(self, handler: _Handler) -> None:
        _, state = self._authenticate(handler)
        state.revoked = True
        self._stats.add("logouts")
        handler.send_json(200, {"status": "OK"})

    # -- events ---------------------------------------------------------------------------------------

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

    def _handle_events(
        self, handler: _Handler, endpoint: str, params: dict[str, str], raw_query: str, faults: Faults
    ) -> None:
        claims, token = self._authenticate(handler)
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
            scroll = self._find_scroll(scroll_id, params["cid"])
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
            new_scroll = self._open_scroll(params["cid"], size, cursor)
        self._reply_page(
            handler, page, new_scroll.scroll_id if new_scroll else None, truncate=kind == "truncated_body"
        )

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
            handler.fault_injected = True
            self._stats.fault(kind)
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
            self._expire_scroll(scroll)
        duplicable = scroll.size > 1 and bool(cursor.tail) and not cursor.exhausted
        kind = self._draw_request_fault(handler, faults, token, continuation=True, duplicable=duplicable)
        if kind == "spurious_401":
            self._spurious_401(token)
        if kind == "scroll_expiry":
            self._expire_scroll(scroll)
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

    def _open_scroll(self, organization_id: str, size: int, cursor: _Cursor) -> _Scroll:
        now = time.monotonic()
        scroll_id = base64.urlsafe_b64encode(b"c4wsim" + secrets.token_bytes(25)).decode()
        scroll = _Scroll(scroll_id, organization_id, size, cursor, now)
        with self._scrolls_lock:
            expired = [sid for sid, s in self._scrolls.items() if now - s.last_used > self.config.scroll_ttl]
            for sid in expired:
                del self._scrolls[sid]
            self._scrolls[scroll_id] = scroll
        if expired:
            self._stats.add("scrolls_expired", len(expired))
        self._stats.add("scrolls_opened")
        return scroll

    def _find_scroll(self, scroll_id: str, organization_id: str) -> _Scroll:
        now = time.monotonic()
        with self._scrolls_lock:
            scroll = self._scrolls.get(scroll_id)
            if scroll is not None and now - scroll.last_used > self.config.scroll_ttl:
                del self._scrolls[scroll_id]
                self._stats.add("scrolls_expired")
                scroll = None
        if scroll is None or scroll.organization_id != organization_id:
            raise _ApiError(404, "scrollId not found or expired")
        return scroll

    def _expire_scroll(self, scroll: _Scroll) -> None:
        with self._scrolls_lock:
            removed = self._scrolls.pop(scroll.scroll_id, None)
        if removed is not None:
            self._stats.add("scrolls_expired")
        raise _ApiError(404, "scrollId not found or expired")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _parse_datetime(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _parse_fault(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_cloud4wi.testing.simulator",
        description="Serve a deterministic simulation of the Cloud4Wi Explore API (events endpoints).",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to bind, 0 = any free port (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="dataset and fault seed")
    parser.add_argument("--organization-id", default=defaults.organization_id)
    parser.add_argument("--client-key", default=defaults.client_key)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument(
        "--data-start", type=_parse_datetime, default=defaults.data_start, help="ISO 8601, inclusive"
    )
    parser.add_argument(
        "--data-end", type=_parse_datetime, default=defaults.data_end, help="ISO 8601, exclusive"
    )
    parser.add_argument("--events-per-hour", type=int, default=defaults.events_per_hour, help="multiple of 3")
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--token-lifetime", type=float, default=defaults.token_lifetime, help="seconds")
    parser.add_argument("--scroll-ttl", type=float, default=defaults.scroll_ttl, help="seconds")
    parser.add_argument("--page-cache-mb", type=float, default=0.0, help="rendered page cache size, 0 = off")
    parser.add_argument(
        "--fault",
        type=_parse_fault,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"fault setting, repeatable; names: {', '.join(f.name for f in fields(Faults))}",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM or SIGINT; prints one ``listening`` line once ready."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults.from_mapping(dict(args.fault))
        config = SimulatorConfig(
            host=args.host,
            port=args.port,
            seed=args.seed,
            organization_id=args.organization_id,
            client_key=args.client_key,
            client_secret=args.client_secret,
            data_start=args.data_start,
            data_end=args.data_end,
            events_per_hour=args.events_per_hour,
            customers=args.customers,
            token_lifetime=args.token_lifetime,
            scroll_ttl=args.scroll_ttl,
            page_cache_bytes=int(args.page_cache_mb * 1024 * 1024),
            faults=faults,
            verbose=args.verbose,
        )
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    simulator = Cloud4WiSimulator(config)
    try:
        simulator.start()
    except OSError as exc:
        print(f"cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"Cloud4Wi simulator listening on {simulator.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
