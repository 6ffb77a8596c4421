"""Pulls sliced in time and run at once: the sequential pull's events, bytes and order, bounded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import pytest

from airflow_provider_cloud4wi.api import paging
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults

DAY_START = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)

EVERY_FAULT = Faults(
    rate_limit=0.04,
    retry_after=0,
    server_error=0.04,
    connection_reset=0.04,
    truncated_body=0.04,
    lost_reply=0.04,
    spurious_401=0.03,
    duplicates=0.15,
    scroll_expiry=0.05,
    unauthorized_burst_rate=0.1,
    max_consecutive_faults=2,
)


@pytest.mark.parametrize("max_concurrency", [2, 4, 8, 16])
def test_a_parallel_pull_yields_the_sequential_pulls_bytes_under_every_fault(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    max_concurrency: int,
) -> None:
    # 3,600 events in pages of 20: some 180 requests, so each fault kind (3-4 % of requests)
    # strikes in any order the slices happen to send them.
    end = DAY_START + 12 * HOUR
    clean = cloud4wi_simulator_factory(events_per_hour=300)
    sequential = list(hook_for(clean).iter_event_lines(DAY_START, end, max_concurrency=1))
    faulty = cloud4wi_simulator_factory(events_per_hour=300, token_lifetime=3.0, faults=EVERY_FAULT)
    pull = hook_for(faulty).iter_event_lines(DAY_START, end, page_size=20, max_concurrency=max_concurrency)
    parallel = list(pull)
    assert parallel == sequential
    assert len(sequential) == 12 * 300
    assert pull.stats.events == len(parallel)
    injected = faulty.stats["faults"]
    assert all(
        injected[kind] > 0 for kind in ("rate_limit", "server_error", "truncated_body", "spurious_401")
    )


@pytest.mark.parametrize("max_concurrency", [4, 16])
def test_slices_that_scroll_through_one_busy_second_survive_resent_duplicates_and_expiring_scrolls(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    max_concurrency: int,
) -> None:
    # Events come three to a second: a page of four that ends on a whole burst is not cut (a fresh
    # query from that second would send three of its four events again), so the slice scrolls on
    # and continuations, where duplicates and expiry strike, happen inside slices (both made
    # more likely, as a few dozen continuations are all a slice of an hour sends, fewer when
    # the slices are cut finer on a loaded machine).
    faults = dataclasses.replace(EVERY_FAULT, duplicates=0.4, scroll_expiry=0.3)
    sim = cloud4wi_simulator_factory(events_per_hour=900, token_lifetime=3.0, faults=faults)
    end = DAY_START + HOUR
    pull = hook_for(sim).iter_event_lines(DAY_START, end, page_size=4, max_concurrency=max_concurrency)
    got = list(pull)
    sequential = list(
        hook_for(cloud4wi_simulator_factory(events_per_hour=900)).iter_event_lines(
            DAY_START, end, max_concurrency=1
        )
    )
    assert got == sequential
    assert len(got) == 900
    assert sim.stats["faults"]["duplicates"] > 0
    assert sim.stats["faults"]["scroll_expiry"] > 0


def test_a_dense_window_is_cut_so_every_worker_has_work_with_few_extra_requests(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator], hook_for: Callable[..., Cloud4WiHook]
) -> None:
    sim = cloud4wi_simulator_factory(events_per_hour=600, faults=Faults(latency_ms=20))
    pull = hook_for(sim).iter_events(DAY_START, DAY_START + 2 * HOUR, page_size=100, max_concurrency=4)
    got = list(pull)
    assert got == list(sim.expected_events(DAY_START, DAY_START + 2 * HOUR))
    # The first full page's time span sizes the pieces, each under a page: four requests at
    # once, and not many more requests than the twelve pages the window holds.
    assert sim.stats["max_requests_in_flight"] == 4
    assert 12 < sim.stats["requests"]["organization_events"] <= 2 * 12


def test_a_server_allowing_two_requests_at_once_slows_the_pull_without_failing_it(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    log_output: Callable[[], str],
) -> None:
    sim = cloud4wi_simulator_factory(
        events_per_hour=210, faults=Faults(max_concurrent_requests=2, latency_ms=30, retry_after=0)
    )
    hook = hook_for(sim)
    got = list(hook.iter_events(DAY_START, DAY_START + 4 * HOUR, page_size=40, max_concurrency=8))
    assert got == list(sim.expected_events(DAY_START, DAY_START + 4 * HOUR))
    assert sim.stats["faults"]["concurrency_limit"] > 0
    assert "concurrency lowered to" in log_output()


def test_a_parallel_pull_holds_only_a_page_per_worker_and_its_backlog_ahead_of_a_slow_consumer(
    cloud4wi_simulator_factory: Callable[..., Cloud4WiSimulator],
    hook_for: Callable[..., Cloud4WiHook],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A backlog of five pages of 20 documents, so that a day of them would overflow it many times.
    monkeypatch.setattr(paging, "BACKLOG_BYTES", 5 * 20 * paging._DOCUMENT_BYTES)
    sim = cloud4wi_simulator_factory(events_per_hour=120)
    pull = hook_for(sim).iter_events(DAY_START, DAY_START + 24 * HOUR, page_size=20, max_concurrency=4)
    next(pull)
    time.sleep(1.0)  # the workers fill what they may hold, then wait
    served = sim.stats["pages_served"]
    time.sleep(0.5)
    assert sim.stats["pages_served"] == served
    # The page being read, two more of its slice, one for each of the four workers and five of
    # backlog; each slice that ended on the way also asked for the page that told it so.
    assert served <= 2 * (1 + 2 + 4 + 5) < 24 * 120 // 20
    pull.close()
