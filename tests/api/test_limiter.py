"""The one limit on a pull's requests in flight: how 429s lower it and successes raise it."""

from __future__ import annotations

import logging

from airflow_provider_cloud4wi.api.limiter import AdaptiveLimiter

LOG = logging.getLogger("test-limiter")


def test_refusals_of_requests_sent_under_one_limit_halve_it_once() -> None:
    limiter = AdaptiveLimiter(12, LOG)
    slots = [limiter.slot() for _ in range(12)]
    held = [slot.__enter__() for slot in slots]
    for one in held[3:]:
        limiter.rate_limited(None, one)
    for slot in slots:
        slot.__exit__(None, None, None)
    assert limiter.limit == 6


def test_a_refusal_right_after_a_raise_steps_back_to_the_limit_that_held() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    with limiter.slot() as first:
        limiter.rate_limited(None, first)
    assert limiter.limit == 4
    for _ in range(10 * 4):
        limiter.succeeded()
    assert limiter.limit == 5
    with limiter.slot() as probe:
        limiter.rate_limited(None, probe)
    assert limiter.limit == 4


def test_a_limit_the_server_refused_is_tried_again_only_after_ten_times_as_many_successes() -> None:
    limiter = AdaptiveLimiter(8, LOG)
    with limiter.slot() as first:
        limiter.rate_limited(None, first)
    for _ in range(10 * 4):
        limiter.succeeded()
    with limiter.slot() as probe:
        limiter.rate_limited(None, probe)
    for _ in range(10 * 4):
        limiter.succeeded()
    assert limiter.limit == 4
    for _ in range(90 * 4):
        limiter.succeeded()
    assert limiter.limit == 5
