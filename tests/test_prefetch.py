"""prefetched: a consumer that stops early neither waits for a slow item nor leaves its work running."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from airflow_provider_cloud4wi.prefetch import prefetched


def slow_after_first(release: threading.Event) -> Iterator[int]:
    """Yield 1 at once, then block (up to 10 s, or until ``release``) before yielding 2."""
    yield 1
    release.wait(10)
    yield 2


def fail_after_first(items: Generator[int, None, None]) -> None:
    """Consume ``items`` as a writer that fails on the first one would, closing them on the way out."""
    with contextlib.closing(items):
        for _ in items:
            raise RuntimeError("writer failed")


def test_consumer_failure_does_not_wait_for_a_slow_item_and_abandons_the_work() -> None:
    release = threading.Event()
    abandoned: list[bool] = []
    started = time.monotonic()
    try:
        items = prefetched(slow_after_first(release), batch=1, on_abandon=lambda: abandoned.append(True))
        with pytest.raises(RuntimeError, match="writer failed"):
            fail_after_first(items)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 3
    assert abandoned == [True]


def test_closing_early_does_not_wait_for_a_slow_item_and_abandons_the_work() -> None:
    release = threading.Event()
    abandoned: list[bool] = []
    started = time.monotonic()
    try:
        items = prefetched(slow_after_first(release), batch=1, on_abandon=lambda: abandoned.append(True))
        assert next(items) == 1
        items.close()
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 3
    assert abandoned == [True]


def test_a_failing_abandon_hook_does_not_hide_the_consumers_error() -> None:
    release = threading.Event()

    def abandon() -> None:
        raise OSError("session already closed")

    try:
        items = prefetched(slow_after_first(release), batch=1, on_abandon=abandon)
        with pytest.raises(RuntimeError, match="writer failed"):
            fail_after_first(items)
    finally:
        release.set()


def test_work_that_ends_on_its_own_is_not_abandoned() -> None:
    abandoned: list[bool] = []
    items = prefetched(iter(range(5)), batch=2, on_abandon=lambda: abandoned.append(True))
    assert list(items) == list(range(5))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("API error")

    with pytest.raises(ValueError, match="API error"):
        list(prefetched(failing(), batch=1, on_abandon=lambda: abandoned.append(True)))
    assert abandoned == []


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed-object", "local-files"])
def test_a_failing_writer_closes_the_session_of_a_pull_blocked_in_a_request(
    s3_bucket: Any, cloud4wi_conn_id: str, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    import requests

    from airflow_provider_cloud4wi.api.pull import EventPull, PullStats
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
    from airflow_provider_cloud4wi.transfers import base
    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator

    session_closed = threading.Event()
    real_close = requests.Session.close

    def close(session: requests.Session) -> None:
        session_closed.set()
        real_close(session)

    def blocked_pull(hook: Cloud4WiHook) -> Iterator[bytes]:
        # A request that only ends when its session is closed (or after 10 s).
        hook.session  # noqa: B018 - the session the pull reads from
        yield b'{"event": {"type": "visit", "id": "1"}}'
        session_closed.wait(10)
        yield b'{"event": {"type": "visit", "id": "2"}}'

    def lines(hook: Cloud4WiHook, *args: Any, **kwargs: Any) -> EventPull[bytes]:
        return EventPull(blocked_pull(hook), PullStats())

    failed_at: list[float] = []

    @contextlib.contextmanager
    def failing_writer(documents: Iterator[bytes], **kwargs: Any) -> Iterator[list[Any]]:
        next(iter(documents))
        failed_at.append(time.monotonic())
        raise OSError("disk full")
        yield []  # pragma: no cover - makes this a generator

    def failing_stream(documents: Iterator[bytes], sink: Any, **kwargs: Any) -> int:
        next(iter(documents))
        failed_at.append(time.monotonic())
        raise OSError("disk full")

    monkeypatch.setattr(requests.Session, "close", close)
    monkeypatch.setattr(Cloud4WiHook, "iter_event_lines", lines)
    monkeypatch.setattr(Cloud4WiHook, "iter_event_blocks", lines)
    if streamed:  # one JSON Lines object on S3 goes up while it is written, a page's block at a time
        monkeypatch.setattr(base, "write_blocks", failing_stream)
    else:
        monkeypatch.setattr(base, "write_export_files", failing_writer)
    operator = Cloud4WiEventsToS3Operator(
        task_id="export",
        s3_bucket=s3_bucket.name,
        s3_key="events.jsonl.gz",
        window_start="2024-01-01T02:00:00Z",
        window_end="2024-01-01T03:00:00Z",
        page_size=1,  # one event per handoff, so the writer gets the first before the pull blocks
        partition_by=None if streamed else "event_type",
    )
    try:
        with pytest.raises(OSError, match="disk full"):
            operator.execute(context={})  # type: ignore[arg-type]
        shutdown = time.monotonic() - failed_at[0]
    finally:
        session_closed.set()
    # Without the abandon hook the consumer would wait out the 2 s join bound before the hook closes.
    assert shutdown < 1.5
    assert list(s3_bucket.keys()) == []
