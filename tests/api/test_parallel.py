"""How a sliced pull cuts what a full page leaves of a slice."""

from __future__ import annotations

import itertools

from airflow_provider_cloud4wi.api.parallel import cut_after


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
