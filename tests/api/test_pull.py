"""The exactly-once pull against the in-memory API: scrolls, resumes, duplicates, odd timestamps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fake_api import DAY, WINDOW, FakeApi, event, hour_of_events, lost_reply, status

from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError
from airflow_provider_cloud4wi.api.pull import MAX_PAGES_WITHOUT_PROGRESS

Build = Callable[..., EventsClient]


def ids(events: list[Any]) -> list[str]:
    return [e["event"]["id"] for e in events]


def test_a_scrolled_window_yields_every_event_once_in_order(client_for: Build) -> None:
    api = FakeApi(hour_of_events(60, per_second=3))
    pull = client_for(api).iter_events(*WINDOW, page_size=7)
    assert ids(list(pull)) == [f"e{n}" for n in range(60)]
    assert pull.stats.events == 60
    assert pull.stats.pages == 10  # 9 pages of events and the empty page that ends the scroll


def test_nothing_is_requested_until_the_first_event_is_asked_for(client_for: Build) -> None:
    api = FakeApi(hour_of_events(5))
    pull = client_for(api).iter_events(*WINDOW)
    assert api.sent == []
    next(pull)
    assert len(api.data_requests()) == 1


def test_a_lost_continuation_reply_is_never_resent_and_the_pull_resumes_from_its_cursor(
    client_for: Build,
) -> None:
    # Request 1 is the login, 2 the fresh query, 3 the first continuation: its reply is lost.
    api = FakeApi(hour_of_events(30, per_second=2), faults={3: lost_reply})
    pull = client_for(api).iter_events(*WINDOW, page_size=5)
    assert ids(list(pull)) == [f"e{n}" for n in range(30)]
    sent = api.data_requests()
    assert sent[2] == {
        "dateStart": f"{DAY}T00:00:02Z",  # the second of the last event delivered
        "dateEnd": f"{DAY}T00:59:59Z",
        "size": 5,
        "sortBy": "utcTime",
        "sortReverse": "false",
        "enableScroll": "true",
    }
    assert [p.get("scrollId") for p in sent].count("s0") == 1
    assert pull.stats.resumes == 1
    assert pull.stats.duplicates_dropped == 1  # e4 shares its second with e5 and came again


def test_duplicates_resent_at_the_cursors_second_are_dropped_and_counted(client_for: Build) -> None:
    api = FakeApi(hour_of_events(40, per_second=4), faults={3: status(503)})
    pull = client_for(api).iter_events(*WINDOW, page_size=6)
    assert ids(list(pull)) == [f"e{n}" for n in range(40)]
    assert pull.stats.duplicates_dropped == 2  # e4, e5 came again with the fresh query from second 1
    assert pull.stats.retries == 1


@pytest.mark.parametrize("code", [400, 404, 410])
def test_a_scroll_that_expires_on_every_continuation_still_yields_every_event(
    client_for: Build, code: int
) -> None:
    api = FakeApi(hour_of_events(25))
    api.faults = {number: status(code) for number in range(3, 40, 2)}
    pull = client_for(api).iter_events(*WINDOW, page_size=4)
    assert ids(list(pull)) == [f"e{n}" for n in range(25)]
    assert pull.stats.resumes >= 5


def test_the_per_contact_endpoint_is_paged_by_time_without_a_scroll(client_for: Build) -> None:
    api = FakeApi(hour_of_events(12, per_second=2))
    pull = client_for(api).iter_events(*WINDOW, customer_id="c1", page_size=5)
    assert ids(list(pull)) == [f"e{n}" for n in range(12)]
    assert all("scrollId" not in p and "enableScroll" not in p for p in api.data_requests())
    assert api.sent[1][1] == "/v1/organizations/org1/customers/c1/events"


def test_a_fraction_of_a_second_before_the_windows_end_is_in_the_window(client_for: Build) -> None:
    late = event(0, 1, created_at=f"{DAY}T00:59:59.500Z")
    api = FakeApi([event(0, 0), late])
    assert ids(list(client_for(api).iter_events(*WINDOW))) == ["e0", "e1"]


def test_a_fraction_of_a_second_before_the_windows_start_is_not(client_for: Build) -> None:
    early = event(0, 1, created_at="2024-01-01T23:59:59.500Z")
    api = FakeApi([])
    api.answer_queries_with = [early, event(0, 0)]  # a server that sends what it likes
    assert ids(list(client_for(api).iter_events(*WINDOW))) == ["e0"]


def test_an_offset_timestamp_is_compared_as_an_instant(client_for: Build) -> None:
    # 02:30+02:00 is 00:30Z, inside the window; 03:30+02:00 is 01:30Z, after it.
    inside = event(0, 1, created_at=f"{DAY}T02:30:00+02:00")
    after = event(0, 2, created_at=f"{DAY}T03:30:00+02:00")
    api = FakeApi([])
    api.answer_queries_with = [event(0, 0), inside, after]
    assert ids(list(client_for(api).iter_events(*WINDOW))) == ["e0", "e1"]


def test_an_event_older_than_the_cursor_is_dropped_with_a_warning_and_counted_apart(
    client_for: Build, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeApi([])
    api.answer_queries_with = [event(10, 0), event(5, 1), event(11, 2)]
    with caplog.at_level(logging.WARNING, logger="fake"):
        pull = client_for(api).iter_events(*WINDOW)
        got = ids(list(pull))
    assert got == ["e0", "e2"]
    assert pull.stats.out_of_order_dropped == 1
    assert pull.stats.duplicates_dropped == 0
    assert "visit:e1" in caplog.text


def test_a_scroll_that_sends_the_same_page_forever_ends_with_an_error(client_for: Build) -> None:
    api = FakeApi(hour_of_events(10), repeat_forever=True)
    with pytest.raises(Cloud4WiApiError, match="pages in a row brought no new event") as raised:
        list(client_for(api).iter_events(*WINDOW, page_size=5))
    assert "organization org1" in str(raised.value)
    assert len(api.data_requests()) == 2 + MAX_PAGES_WITHOUT_PROGRESS


def test_more_events_at_one_second_than_a_page_without_a_scroll_asks_for_a_bigger_page(
    client_for: Build,
) -> None:
    api = FakeApi(hour_of_events(10, per_second=10))
    expected = r"share that second, which paging by time cannot move past \(raise page_size, up to 10000\)"
    with pytest.raises(Cloud4WiApiError, match=expected):
        list(client_for(api).iter_events(*WINDOW, customer_id="c1", page_size=4))


def test_an_event_that_is_not_an_object_fails_naming_the_page(client_for: Build) -> None:
    api = FakeApi([])
    api.answer_queries_with = [event(0, 0), "oops"]
    with pytest.raises(
        Cloud4WiApiError, match="Events page 1 holds an event that is not a JSON object: '\"oops\"'"
    ):
        list(client_for(api).iter_events(*WINDOW))


def test_event_lines_are_the_same_events_as_documents(client_for: Build) -> None:
    import json

    api = FakeApi(hour_of_events(20, per_second=2), faults={4: lost_reply})
    lines = list(client_for(api).iter_event_lines(*WINDOW, page_size=3))
    assert [json.loads(line) for line in lines] == hour_of_events(20, per_second=2)


def test_a_count_is_one_request_capped_at_its_limit(client_for: Build) -> None:
    api = FakeApi(hour_of_events(30))
    assert client_for(api).count_events(*WINDOW, limit=10) == 10
    assert len(api.data_requests()) == 1
