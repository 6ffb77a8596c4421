"""A page's block of lines: decided for the whole page when it can be, always the per-event result."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from fake_api import DAY, event

from airflow_provider_cloud4wi.api import codec
from airflow_provider_cloud4wi.api import pull as pull_module
from airflow_provider_cloud4wi.api.pull import Delivery, PullStats, TimeCursor, WindowFilter
from airflow_provider_cloud4wi.windows import Window

pytest.importorskip("msgspec")  # raw pages, and so blocks decided per page, need it

FIRST, LAST = f"{DAY}T00:00:00Z", f"{DAY}T00:59:59Z"
WINDOW = Window.parse(f"{DAY}T00:00:00Z", f"{DAY}T01:00:00Z")


def raw_page(documents: list[Any]) -> codec.RawEvents:
    """The events of a reply holding ``documents``, as the client parses an events page."""
    body = json.dumps({"events": documents, "scrollId": "s1"}, separators=(",", ":")).encode()
    events: codec.RawEvents = codec.parse_events_page(body, raw=True)["events"]
    return events


def delivery(cursor_second: str = FIRST, ids_at_second: set[str] | None = None) -> Delivery:
    cursor = TimeCursor(cursor_second)
    cursor.ids_at_second = set(ids_at_second or ())
    return Delivery(WindowFilter(WINDOW, (FIRST, LAST)), cursor, PullStats(), logging.getLogger("test"))


def per_event(pull: Delivery, documents: list[Any]) -> bytes:
    """The same page taken one event at a time, as the lines of a pull are."""
    lines = list(pull.page(raw_page(documents), lines=True))
    return b"".join(line + b"\n" for line in lines)


def state(pull: Delivery) -> tuple[Any, ...]:
    stats = pull.stats
    counts = (
        stats.events,
        stats.duplicates_dropped,
        stats.out_of_order_dropped,
        stats.outside_window_dropped,
    )
    return pull.cursor.second, pull.cursor.ids_at_second, counts


def at(second: int, number: int, *, number_as: str | None = None, **fields: Any) -> dict[str, Any]:
    """The fake API's event, its id ``number_as`` when given."""
    document = event(second, number, **fields)
    if number_as is not None:
        document["event"]["id"] = number_as
    return document


def test_a_sorted_page_in_the_window_is_decided_at_once_and_keeps_the_apis_text() -> None:
    documents = [at(second // 3, second) for second in range(30)]
    events = raw_page(documents)
    assert events.usual_keys is not None
    pull = delivery()
    block = pull.block(events)
    assert block.splitlines() == [json.dumps(d, separators=(",", ":")).encode() for d in documents]
    assert pull.cursor.second == f"{DAY}T00:00:09Z"
    assert pull.cursor.ids_at_second == {"visit:e27", "visit:e28", "visit:e29"}
    assert pull.stats.events == 30


def test_events_at_the_cursors_second_already_delivered_are_dropped_from_the_block() -> None:
    pull = delivery(f"{DAY}T00:00:01Z", {"visit:e3"})
    block = pull.block(raw_page([at(1, 3), at(1, 4), at(2, 5)]))
    assert [json.loads(line)["event"]["id"] for line in block.splitlines()] == ["e4", "e5"]
    assert pull.stats.duplicates_dropped == 1


@pytest.mark.parametrize(
    "documents",
    [
        pytest.param([at(1, 1), at(2, 2), at(2, 2), at(3, 3)], id="an id sent twice"),
        pytest.param([at(2, 1), at(1, 2), at(3, 3)], id="out of order"),
        pytest.param([at(1, 1), at(4000, 2)], id="past the window's end"),
        pytest.param([at(1, 1), at(2, 2, created_at=f"{DAY}T00:00:02+0")], id="a time of twenty characters"),
        pytest.param([at(1, 1), {"event": {"type": "visit", "id": ""}, "when": {}}], id="an empty id"),
        pytest.param([], id="an empty page"),
        pytest.param(
            [at(1, 1, kind="a:b", number_as="c"), at(1, 2, kind="a", number_as="b:c")],
            id="two events whose type and id read the same",
        ),
        pytest.param([at(1, number) for number in range(5)], id="more events at one second than allowed"),
    ],
)
def test_an_unusual_page_gives_the_block_of_its_events_taken_one_by_one(
    documents: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_module, "MAX_EVENTS_AT_ONE_SECOND", 4)
    fast, slow = delivery(), delivery()
    try:
        expected: bytes | str = per_event(slow, documents)
    except Exception as error:  # the per-event rules refuse the page: so must the block
        expected = type(error).__name__
    try:
        block: bytes | str = fast.block(raw_page(documents))
    except Exception as error:
        block = type(error).__name__
    assert block == expected
    assert state(fast) == state(slow)


def test_a_time_of_twenty_characters_without_a_final_z_makes_the_page_unusual() -> None:
    events = raw_page([at(1, 1), at(2, 2, created_at=f"{DAY}T00:00:02+0")])
    assert events.usual_keys is None


def test_an_id_that_is_not_utf8_makes_the_page_unusual_rather_than_the_reply_unreadable() -> None:
    good = json.dumps(at(1, 1), separators=(",", ":")).encode()
    body = b'{"events":[' + good + b"," + good.replace(b'"e1"', b'"e\xff"') + b"]}"
    events = codec.parse_events_page(body, raw=True)["events"]
    assert len(events) == 2
    assert events.usual_keys is None


@pytest.mark.parametrize("seed", range(40))
def test_any_sequence_of_pages_gives_the_blocks_of_the_per_event_rules(seed: int) -> None:
    # Pages as a hostile or sloppy server might send them: repeats across and within pages,
    # events older than the cursor, times outside the window, and unusual times now and then.
    rng = random.Random(seed)
    fast, slow = delivery(), delivery()
    second, number = 0, 0
    for _ in range(6):
        documents = []
        for _ in range(rng.randint(0, 25)):
            roll = rng.random()
            if roll < 0.05 and number:
                documents.append(at(second, rng.randrange(number)))  # an id seen before
            elif roll < 0.08:
                documents.append(at(max(0, second - rng.randint(1, 3)), number))  # older
            elif roll < 0.10:
                documents.append(at(3600 + second, number))  # past the window
            elif roll < 0.12:
                documents.append(at(second, number, created_at=f"{DAY}T00:00:{second % 60:02d}.5Z"))
            else:
                second += rng.choice((0, 0, 1, 2))
                documents.append(at(second, number, kind=rng.choice(("visit", "login"))))
            number += 1
        if rng.random() < 0.3 and documents:
            documents.append(documents[rng.randrange(len(documents))])  # a repeat within the page
        assert fast.block(raw_page(documents)) == per_event(slow, documents)
        assert state(fast) == state(slow)
