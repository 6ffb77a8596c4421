"""The one limit on a pull's requests in flight: how 429s lower it and successes raise it."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from airflow_provider_cloud4wi.api.limiter import AdaptiveLimiter

LOG = logging.getLogger("test-limiter")


def refuse_one_alone(limiter: AdaptiveLimiter) -> None:
    """One request sent with nothing else in flight, refused with a 429."""
    with limiter.slot() as held:
        pass
    limiter.rate_limited(None, held)


def burst(limiter: AdaptiveLimiter, sent: int, served: int) -> list[Any]:
    """``sent`` requests at once; all but the first ``served`` come back refused, the latest first.

    Returns the slots of the served ones, still in flight.
    """
    slots = [limiter.slot() for _ in range(sent)]
    held = [slot.__enter__() for slot in slots]
    for slot, one in reversed(list(zip(slots[served:], held[served:], strict=True))):
        slot.__exit__(None, None, None)
        limiter.rate_limited(None, one)
    return slots[:served]


def test_one_refusal_among_eight_requests_in_flight_lowers_the_limit_by_one() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    slots = [limiter.slot() for _ in range(8)]
    held = [slot.__enter__() for slot in slots]
    slots[0].__exit__(None, None, None)
    limiter.rate_limited(None, held[0])
    assert limiter.limit == 7


def test_a_refusal_right_after_a_raise_steps_back_to_the_limit_that_held() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    refuse_one_alone(limiter)
    assert limiter.limit == 4
    for _ in range(10 * 4):
        limiter.succeeded()
    assert limiter.limit == 5
    refuse_one_alone(limiter)
    assert limiter.limit == 4


def test_a_limit_the_server_refused_is_tried_again_only_after_ten_times_as_many_successes() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    refuse_one_alone(limiter)
    for _ in range(10 * 4):
        limiter.succeeded()
    refuse_one_alone(limiter)
    for _ in range(10 * 4):
        limiter.succeeded()
    assert limiter.limit == 4
    for _ in range(90 * 4):
        limiter.succeeded()
    assert limiter.limit == 5


def test_a_burst_against_a_server_that_takes_three_at_once_ends_at_three() -> None:
    limiter = AdaptiveLimiter(12, LOG)
    # The server serves the first three sent; the nine after them are refused while the three
    # are still being answered.
    burst(limiter, sent=12, served=3)
    assert limiter.limit == 3


def test_after_a_burst_the_limit_above_what_the_server_took_is_tried_only_after_many_successes() -> None:
    limiter = AdaptiveLimiter(12, LOG)
    for slot in burst(limiter, sent=12, served=3):
        slot.__exit__(None, None, None)
    for _ in range(10 * 3):
        limiter.succeeded()
    assert limiter.limit == 3
    for _ in range(90 * 3):
        limiter.succeeded()
    assert limiter.limit == 4


def test_a_lone_refusal_among_few_requests_halves_the_limit_without_slowing_its_recovery() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    refuse_one_alone(limiter)
    assert limiter.limit == 4
    for _ in range(10 * 4):
        limiter.succeeded()
    assert limiter.limit == 5


def test_requests_waiting_for_a_slot_are_let_through_in_the_order_they_asked() -> None:
    limiter = AdaptiveLimiter(1, LOG)
    order: list[int] = []
    first = limiter.slot()
    first.__enter__()

    def request(number: int) -> None:
        with limiter.slot():
            order.append(number)

    threads = []
    for number in range(5):
        thread = threading.Thread(target=request, args=(number,))
        thread.start()
        threads.append(thread)
        while len(limiter._queue) < number + 1:  # each asks only once the one before it waits
            time.sleep(0.001)
    first.__exit__(None, None, None)
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3, 4]
