"""Where and when each event is: index <-> ``createdAt``, customers and seeded random material."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import threading
from array import array

from airflow_provider_cloud4wi.testing.simulator.primitives import _MASK64, _epoch_seconds, _mix64
from airflow_provider_cloud4wi.testing.simulator.protocol import EVENT_TYPES
from airflow_provider_cloud4wi.testing.simulator.world import _GEO_TYPES, _REGION_SPECS, _TYPE_TABLE, _Region

_BLOCK_SHIFT = 10  # events share their random material in blocks of 1024 consecutive indices
_BLOCK_SIZE = 1 << _BLOCK_SHIFT
_BLOCK_MASK = _BLOCK_SIZE - 1
_MAX_CACHED_BLOCKS = 256  # about 12 MB


class _EventTimeline:
    """The layer of :class:`EventDataset` that places events: a pure function of seed and index.

    :param seed: seeds every choice of the dataset.
    :param organization_id: the organization the events belong to.
    :param data_start: the first instant of the data range (aware, inclusive).
    :param data_end: the end of the data range (aware, exclusive).
    :param events_per_hour: events in every hour, a multiple of 3 (events come in bursts of 3).
    :param customers: how many customers the events are spread over.
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
        self._customer_slots: dict[str, int] | None = None
        self._lock = threading.Lock()
        self.lo = self.first_index_at_or_after(start)
        self.hi = self.first_index_at_or_after(end)
        self._seed_key = seed_key

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
