"""How a sliced pull cuts what a full page leaves of a slice, and how much it holds at once."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

from airflow_provider_cloud4wi.api.parallel import Slice, SlicedPull, Splitter, cut_after
from airflow_provider_cloud4wi.api.pull import PullStats


def test_the_rest_of_a_slice_is_cut_into_pieces_of_most_of_a_full_pages_span() -> None:
    pieces = cut_after("2024-01-02T00:09:59Z", "2024-01-02T00:59:59Z", 600, 100)
    # 3,000 seconds left, pieces of at most 0.8 x 600 s: seven of equal width, end to end.
    assert len(pieces) == 7
    assert pieces[0] == ("2024-01-02T00:10:00Z", "2024-01-02T00:17:07Z")
    assert pieces[1][0] == "2024-01-02T00:17:08Z"
    assert pieces[-1][1] == "2024-01-02T00:59:59Z"


def test_a_dense_page_at_the_start_of_a_long_window_leaves_the_far_rest_as_one_last_piece() -> None:
    pieces = cut_after("2024-01-02T00:00:39Z", "2024-01-31T23:59:59Z", 40, 16)
    # Fifteen pieces of 0.8 x 40 s, then everything after them up to the end of the window.
    assert len(pieces) == 16
    assert pieces[0] == ("2024-01-02T00:00:40Z", "2024-01-02T00:01:11Z")
    assert pieces[14] == ("2024-01-02T00:08:08Z", "2024-01-02T00:08:39Z")
    assert pieces[15] == ("2024-01-02T00:08:40Z", "2024-01-31T23:59:59Z")
    assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(pieces))


def test_nothing_is_cut_after_the_last_second_of_a_slice() -> None:
    assert cut_after("2024-01-02T00:59:59Z", "2024-01-02T00:59:59Z", 5, 16) == []


def test_a_piece_is_never_narrower_than_one_second() -> None:
    pieces = cut_after("2024-01-02T00:00:00Z", "2024-01-02T00:00:03Z", 1, 16)
    assert pieces == [(f"2024-01-02T00:00:0{s}Z",) * 2 for s in (1, 2, 3)]


BATCH = b"x" * 10


def slices_of_batches(per_slice: int, produced: list[str]) -> Callable[[Slice, Splitter], Iterator[bytes]]:
    """A slice puller: the first slice cuts the hour into minutes, each slice yields its batches."""

    def pull_slice(piece: Slice, splitter: Splitter) -> Iterator[bytes]:
        if piece.first == "2024-01-02T00:00:00Z":
            splitter("2024-01-02T00:00:00Z", "2024-01-02T00:00:59Z")
        for _ in range(per_slice):
            produced.append(piece.first)
            yield BATCH

    return pull_slice


def sliced(pull_slice: Callable[[Slice, Splitter], Iterator[bytes]], backlog: int) -> SlicedPull:
    return SlicedPull(
        pull_slice,
        "2024-01-02T00:00:00Z",
        "2024-01-02T00:59:59Z",
        max_concurrency=4,
        stats=PullStats(),
        weigh=len,
        backlog_bytes=backlog,
    )


def settled(count: Callable[[], int], seconds: float = 0.3, limit: float = 10.0) -> int:
    """``count()`` once it has not changed for ``seconds`` (waiting ``limit`` seconds at most)."""
    deadline = time.monotonic() + limit
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < seconds:
        time.sleep(0.02)
        if count() != last:
            last, since = count(), time.monotonic()
    return last


def test_workers_of_a_consumer_that_stops_reading_hold_a_batch_each_and_the_backlog() -> None:
    produced: list[str] = []
    pull = iter(sliced(slices_of_batches(3, produced), backlog=50))
    next(pull)  # the consumer reads one batch, then stops
    waiting = settled(lambda: len(produced)) - 1
    # A batch for each of the 4 workers and 50 bytes of backlog: 9 batches of 10 bytes; the slice
    # being read may hold two more.
    assert 9 <= waiting <= 11
    pull.close()


def test_batches_larger_than_the_backlog_still_go_through_in_order() -> None:
    produced: list[str] = []
    batches = list(sliced(slices_of_batches(2, produced), backlog=5))
    assert batches == [BATCH] * len(produced)
    assert len(produced) > 2  # several slices took part
