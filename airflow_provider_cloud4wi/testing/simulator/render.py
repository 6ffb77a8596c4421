"""Event documents as JSON: pre-encoded template pieces joined per event, and the dict reference."""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterable
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.primitives import _clock, _iso, _json_str, _loads
from airflow_provider_cloud4wi.testing.simulator.protocol import EVENT_TYPES
from airflow_provider_cloud4wi.testing.simulator.timeline import _BLOCK_MASK, _BLOCK_SHIFT, _EventTimeline
from airflow_provider_cloud4wi.testing.simulator.world import _GEO_TYPES, _TYPE_TABLE, type_objects

_KIND_STATIC, _KIND_VISIT, _KIND_GEO_VISIT, _KIND_GEO_ARRIVING = range(4)
_LOCAL_MARK = b'","createdAtLocal":"'
_START_LOCAL_MARK = b'","startAtLocal":"'
_VISIT_MARK_LOCATION = b'l","visit":{"startAt":"'
_VISIT_MARK_GEO = b'g","visit":{"startAt":"'


class _EventRenderer(_EventTimeline):
    """The layer of :class:`EventDataset` that writes events as JSON documents.

    The parameters are those of the timeline (see :class:`EventDataset`).
    """

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
        super().__init__(
            seed=seed,
            organization_id=organization_id,
            data_start=data_start,
            data_end=data_end,
            events_per_hour=events_per_hour,
            customers=customers,
        )
        self._prefix_cache: dict[int, tuple[bytes, bytes]] = {}
        self._day_cache: dict[int, bytes] = {}
        self._build_variants(self._seed_key)

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

    def _build_variants(self, seed_key: int) -> None:
        """Per (region, type): the static choices of an event, as data and as JSON template pieces.

        ``_variants[region][type]`` lists ``(where JSON, member JSON)`` pairs (the member is the type
        object for static types, the app ``properties`` for geo types, ``""`` otherwise);
        ``_middles`` holds, for the same positions, the JSON text that follows the dynamic part of
        ``event`` up to the opening quote of ``createdAt``. Bits 10.. of ``h`` pick the position.
        """
        objects = type_objects(seed_key)
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

    # Over 60 lines on purpose: this loop is the simulator's hot path (a million events per few
    # seconds), and a helper call per event, or attribute look-ups instead of locals, cost more
    # than the rest of the loop.
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
