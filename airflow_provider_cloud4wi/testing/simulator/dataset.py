"""The simulated events as the API selects and orders them: windows, customers, types, sort orders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.primitives import _epoch_seconds
from airflow_provider_cloud4wi.testing.simulator.protocol import EVENT_TYPES
from airflow_provider_cloud4wi.testing.simulator.render import _EventRenderer
from airflow_provider_cloud4wi.testing.simulator.timeline import _BLOCK_MASK, _BLOCK_SHIFT
from airflow_provider_cloud4wi.testing.simulator.world import _TYPE_INDEX, _TYPE_TABLE

__all__ = ["EventDataset"]

_SORT_WINDOW_EVENTS = 4096  # businessTime order is sorted in windows of about this many events


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


class EventDataset(_EventRenderer):
    """The simulated events: a pure function of the seed and the event index (see the package doc).

    The timeline (index <-> ``createdAt``, customers, random material) and the JSON rendering are
    the layers this class builds on; it adds what a query needs: selections, orders and counts.

    :param seed: seeds every choice of the dataset.
    :param organization_id: the organization the events belong to.
    :param data_start: the first instant of the data range (aware, inclusive).
    :param data_end: the end of the data range (aware, exclusive).
    :param events_per_hour: events in every hour, a multiple of 3 (events come in bursts of 3).
    :param customers: how many customers the events are spread over.
    """

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
