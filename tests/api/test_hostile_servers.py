"""The client against small hostile servers over real loopback HTTP (issue #15).

Each server is bound to 127.0.0.1 on a free port and stopped when its test ends; each test is
bounded in time. Redirects, repr of the hook and malformed pages are covered by
``tests/hooks/test_hostile_and_pasted_inputs.py``; this file covers the rest of the issue:
replies too large on the wire or after decompression, bodies that drip, scrolls that never end,
timestamps with offsets or fractions, and secrets in the repr of every object of a pull.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hostile_server import (
    CLIENT_KEY,
    CLIENT_SECRET,
    MIB,
    ORG,
    SEQUENTIAL,
    TOKEN,
    WINDOW,
    Answer,
    HostileServer,
    Request,
    client_for,
    event,
    gzip_stream,
    pull_in_subprocess,
    settings_for,
)

from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError, Cloud4WiTransientError
from airflow_provider_cloud4wi.api.pull import MAX_EVENTS_AT_ONE_SECOND, MAX_PAGES_WITHOUT_PROGRESS
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import DEFAULT_MAX_REPLY_BYTES

Serve = Callable[[Answer], HostileServer]
SMALL_CAP = 8 * MIB


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start hostile servers; every one is stopped when the test ends, whatever happened."""
    started: list[HostileServer] = []

    def start(answer: Answer) -> HostileServer:
        server = HostileServer(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _pull(server: HostileServer, *, lines: bool = False, **overrides: Any) -> list[Any]:
    client = client_for(server.url, **overrides)
    try:
        pull = client.iter_event_lines if lines else client.iter_events
        return list(pull(*WINDOW, **SEQUENTIAL))
    finally:
        client.transport.close()


# ------------------------------------------------------------------------------------------ size
@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """An events page of ~1 MB gzip inflating to 1 GiB of JSON whitespace (an empty page, if read)."""
    bomb = gzip_stream(b'{"events": [', b" ", 1024 * MIB, b"]}")
    assert len(bomb) < 2 * MIB
    return bomb


def _gzip_reply(body: bytes) -> Answer:
    def answer(request: Request) -> None:
        request.send_bytes(body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    return answer


def _endless_body(declared_length: str | None) -> Answer:
    """A 200 whose body never ends (zeros as fast as the client takes them), maybe with a length."""

    def answer(request: Request) -> None:
        headers = {"Content-Type": "application/json"}
        if declared_length is not None:
            headers["Content-Length"] = declared_length
        request.head(200, headers)
        block = b'{"events": [' + b" " * (MIB - 12)
        while request.write(block):
            pass

    return answer


@pytest.mark.parametrize("lines", [False, True], ids=["dicts", "lines"])
def test_a_gzip_bomb_fails_with_the_size_error_instead_of_passing_for_an_empty_page(
    serve: Serve, gzip_bomb: bytes, lines: bool
) -> None:
    server = serve(_gzip_reply(gzip_bomb))
    started = time.monotonic()
    with pytest.raises(Cloud4WiApiError, match=r"larger than 8 MiB \(on the wire or decompressed\)"):
        _pull(server, lines=lines, max_reply_bytes=SMALL_CAP)
    assert time.monotonic() - started < 10
    assert len(server.data_requests()) == 1  # a reply too large is not worth another try


def test_a_gzip_bomb_leaves_the_peak_memory_of_a_pull_bounded(serve: Serve, gzip_bomb: bytes) -> None:
    server = serve(_gzip_reply(gzip_bomb))
    outcome = pull_in_subprocess(server.url, max_reply_bytes=SMALL_CAP)
    assert outcome["error"] == "Cloud4WiApiError", outcome
    assert "larger than 8 MiB" in outcome["message"]
    assert outcome["growth_mb"] < 200, outcome
    assert outcome["seconds"] < 10, outcome


def test_a_gzip_bomb_leaves_the_peak_memory_bounded_with_the_default_cap(
    serve: Serve, gzip_bomb: bytes
) -> None:
    server = serve(_gzip_reply(gzip_bomb))
    outcome = pull_in_subprocess(server.url, max_reply_bytes=None)
    assert outcome["error"] == "Cloud4WiApiError", outcome
    assert f"larger than {DEFAULT_MAX_REPLY_BYTES // MIB} MiB" in outcome["message"]
    assert outcome["growth_mb"] < 200, outcome


def test_the_cap_comes_from_the_connections_max_reply_mb(
    serve: Serve, gzip_bomb: bytes, set_connection: Callable[..., str]
) -> None:
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook

    server = serve(_gzip_reply(gzip_bomb))
    conn_id = set_connection(
        "cloud4wi_capped",
        "cloud4wi",
        host=server.url,
        login=CLIENT_KEY,
        password=CLIENT_SECRET,
        extra={"organization_id": ORG, "max_reply_mb": 3},
    )
    hook = Cloud4WiHook(conn_id, max_attempts=2, retry_wait_initial=0, retry_wait_max=0)
    try:
        assert hook.settings.max_reply_bytes == 3 * MIB
        with pytest.raises(Cloud4WiApiError, match=r"larger than 3 MiB"):
            list(hook.iter_events(*WINDOW, **SEQUENTIAL))
    finally:
        hook.close()
    assert len(server.data_requests()) == 1


def test_a_reply_declaring_two_gigabytes_fails_at_once_without_being_read(serve: Serve) -> None:
    server = serve(_endless_body("2000000000"))
    started = time.monotonic()
    with pytest.raises(
        Cloud4WiApiError, match=rf"larger than {DEFAULT_MAX_REPLY_BYTES // MIB} MiB"
    ) as raised:
        _pull(server)
    assert time.monotonic() - started < 5
    assert "is the host really the Cloud4Wi API?" in str(raised.value)
    [request] = server.data_requests()
    # Only what the socket buffers took before the client hung up, not the body.
    assert request.sent < 64 * MIB


def test_a_reply_declaring_two_gigabytes_leaves_the_peak_memory_of_a_pull_bounded(serve: Serve) -> None:
    server = serve(_endless_body("2000000000"))
    outcome = pull_in_subprocess(server.url, max_reply_bytes=None)
    assert outcome["error"] == "Cloud4WiApiError", outcome
    assert f"larger than {DEFAULT_MAX_REPLY_BYTES // MIB} MiB" in outcome["message"]
    assert outcome["growth_mb"] < 200, outcome
    assert outcome["seconds"] < 5, outcome


def test_a_body_without_a_length_that_keeps_coming_fails_once_past_the_cap(serve: Serve) -> None:
    server = serve(_endless_body(None))
    started = time.monotonic()
    with pytest.raises(Cloud4WiApiError, match=r"larger than 8 MiB"):
        _pull(server, max_reply_bytes=SMALL_CAP)
    assert time.monotonic() - started < 10
    assert len(server.data_requests()) == 1


def test_a_body_without_a_length_that_keeps_coming_leaves_the_peak_memory_bounded(serve: Serve) -> None:
    server = serve(_endless_body(None))
    outcome = pull_in_subprocess(server.url, max_reply_bytes=SMALL_CAP)
    assert outcome["error"] == "Cloud4WiApiError", outcome
    assert outcome["growth_mb"] < 200, outcome
    assert outcome["seconds"] < 10, outcome


def test_a_reply_just_under_the_cap_is_still_read(serve: Serve) -> None:
    padding = b" " * (SMALL_CAP - 200)
    body = b'{"events": [' + json.dumps(event(1, "2024-01-02T00:00:01Z")).encode() + b"]" + padding + b"}"
    assert len(body) <= SMALL_CAP
    server = serve(_gzip_reply(gzip_stream(body, b" ", 0, b"")))
    assert [e["event"]["id"] for e in _pull(server, max_reply_bytes=SMALL_CAP)] == ["e1"]


# ------------------------------------------------------------------------------------------ time
PAGE_OF_TWO = json.dumps(
    {"events": [event(1, "2024-01-02T00:00:01Z"), event(2, "2024-01-02T00:00:02Z")]}
).encode()


def _dripping(every: float, *, good_after: int | None = None, framing: str = "length") -> Answer:
    """
    Drip the body a byte every ``every`` seconds; answer properly from request ``good_after`` on.

    :param framing: how the body's end is told: ``length`` (Content-Length), ``chunked`` (a chunk
        per byte) or ``close`` (no length: the body ends when the connection does).
    """

    def answer(request: Request) -> None:
        number = len(request.server.data_requests())
        if good_after is not None and number >= good_after:
            request.send_bytes(PAGE_OF_TWO, headers={"Content-Type": "application/json"})
            return
        body = b'{"events": []' + b" " * 200 + b"}"
        if framing == "chunked":
            request.handler.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n"
            )
            for i in range(len(body)):
                if not request.write(b"1\r\n" + body[i : i + 1] + b"\r\n") or request.server.stop_event.wait(
                    every
                ):
                    return
            request.write(b"0\r\n\r\n")
            return
        headers = {"Content-Type": "application/json"}
        if framing == "length":
            headers["Content-Length"] = str(len(body))
        request.head(200, headers)
        request.drip(body, every)

    return answer


def test_a_body_dripping_a_byte_at_a_time_fails_within_the_request_deadline_and_is_retried_once(
    serve: Serve,
) -> None:
    server = serve(_dripping(0.2))
    started = time.monotonic()
    with pytest.raises(Cloud4WiTransientError, match=r"took longer than 5 read timeouts \(5s\) in all"):
        _pull(server, timeout=1)
    elapsed = time.monotonic() - started
    assert elapsed < 20
    assert elapsed > 2 * 5 * 0.9  # two attempts, each cut off at its own deadline
    assert len(server.data_requests()) == 2  # max_attempts=2: one retry, no more


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_dripping_body_is_cut_off_at_the_deadline_however_its_end_is_framed(
    serve: Serve, framing: str
) -> None:
    server = serve(_dripping(0.2, framing=framing))
    client = EventsClient(settings_for(server.url, timeout=1), retry=RetryPolicy(max_attempts=1))
    started = time.monotonic()
    try:
        with pytest.raises(Cloud4WiTransientError, match=r"took longer than 5 read timeouts"):
            list(client.iter_events(*WINDOW, **SEQUENTIAL))
    finally:
        client.transport.close()
    assert 4.5 < time.monotonic() - started < 5 + 1.5


def test_a_dripping_reply_is_retried_and_the_next_good_reply_completes_the_pull(serve: Serve) -> None:
    server = serve(_dripping(0.2, good_after=2))
    started = time.monotonic()
    got = _pull(server, timeout=1)
    assert [e["event"]["id"] for e in got] == ["e1", "e2"]
    assert time.monotonic() - started < 10
    assert len(server.data_requests()) == 2


def test_the_deadline_comes_from_the_connections_timeout(
    serve: Serve, set_connection: Callable[..., str]
) -> None:
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook

    server = serve(_dripping(0.2))
    conn_id = set_connection(
        "cloud4wi_dripping",
        "cloud4wi",
        host=server.url,
        login=CLIENT_KEY,
        password=CLIENT_SECRET,
        extra={"organization_id": ORG, "timeout": 1},
    )
    hook = Cloud4WiHook(conn_id, max_attempts=1)
    started = time.monotonic()
    try:
        with pytest.raises(Cloud4WiTransientError, match=r"took longer than 5 read timeouts \(5s\)"):
            list(hook.iter_events(*WINDOW, **SEQUENTIAL))
    finally:
        hook.close()
    assert time.monotonic() - started < 9


def test_a_server_dripping_its_headers_is_cut_off_by_the_request_deadline_too(serve: Serve) -> None:
    def answer(request: Request) -> None:
        request.handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
        # ~8 s of one header dripping; a real hostile server could go on for hours (64 KiB a line).
        request.drip(b"X-Slow: " + b"a" * 30 + b"\r\n", 0.2)
        request.write(b"Content-Type: application/json\r\nContent-Length: 14\r\n\r\n")
        request.write(b'{"events": []}')

    server = serve(answer)
    one_attempt = RetryPolicy(max_attempts=1)
    client = EventsClient(settings_for(server.url, timeout=1), retry=one_attempt)
    started = time.monotonic()
    try:
        with pytest.raises(Cloud4WiTransientError, match="took longer than"):
            list(client.iter_events(*WINDOW, **SEQUENTIAL))
    finally:
        client.transport.close()
        elapsed = time.monotonic() - started
    assert elapsed < 5 + 1.5


def test_a_body_without_a_length_cut_off_at_the_deadline_is_not_taken_for_the_whole_reply(
    serve: Serve,
) -> None:
    # Were the deadline to end the read by closing the socket, the end of the connection would also
    # be the end of this body, and the valid JSON received so far would pass for an empty page.
    def answer(request: Request) -> None:
        request.head(200, {"Content-Type": "application/json"})  # no length: the body ends at close
        request.write(b'{"events": []}')  # valid JSON already, then whitespace while the body drips on
        # A byte every 0.9 s: no read timeout (1 s) fires, and the 5 s deadline falls between two bytes.
        request.drip(b" " * 20, 0.9)

    server = serve(answer)
    client = EventsClient(settings_for(server.url, timeout=1), retry=RetryPolicy(max_attempts=1))
    started = time.monotonic()
    try:
        with pytest.raises(Cloud4WiTransientError, match="took longer than"):
            list(client.iter_events(*WINDOW, **SEQUENTIAL))
    finally:
        client.transport.close()
    assert time.monotonic() - started < 5 + 1.5


# ------------------------------------------------------------------------------------------ endless scrolls
def _same_page_forever(events: list[dict[str, Any]]) -> Answer:
    page = json.dumps({"events": events, "scrollId": "the-same-scroll"}).encode()

    def answer(request: Request) -> None:
        request.send_bytes(page, headers={"Content-Type": "application/json"})

    return answer


@pytest.mark.parametrize("lines", [False, True], ids=["dicts", "lines"])
def test_a_scroll_answering_the_same_page_forever_ends_naming_the_organization_and_the_window(
    serve: Serve, lines: bool
) -> None:
    events = [event(n, f"2024-01-02T00:00:{n:02d}Z") for n in range(5)]
    server = serve(_same_page_forever(events))
    client = client_for(server.url)
    started = time.monotonic()
    pull = (client.iter_event_lines if lines else client.iter_events)(*WINDOW, page_size=5, **SEQUENTIAL)
    try:
        with pytest.raises(Cloud4WiApiError, match="pages in a row brought no new event") as raised:
            list(pull)
    finally:
        client.transport.close()
    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert f"organization {ORG}" in message
    assert "2024-01-02T00:00:00" in message  # the window
    assert "2024-01-02T01:00:00" in message
    assert "5 delivered" in message
    assert pull.stats.events == 5  # the first page's events, each once
    # The first page, then the pages that brought nothing: bounded, not "until the execution timeout".
    assert len(server.data_requests()) == 1 + MAX_PAGES_WITHOUT_PROGRESS
    assert all(r.is_continuation for r in server.data_requests()[1:])


def _new_ids_at_one_second_forever(page_size: int) -> Answer:
    numbers = iter(range(10**9))

    def answer(request: Request) -> None:
        first = next(numbers) * page_size
        stamp = '"when": {"createdAt": "2024-01-02T00:00:00Z"}'
        page = ",".join(
            f'{{"event": {{"type": "visit", "id": "n{first + i}"}}, {stamp}}}' for i in range(page_size)
        )
        body = f'{{"events": [{page}], "scrollId": "s{first}"}}'.encode()
        request.send_bytes(body, headers={"Content-Type": "application/json"})

    return answer


@pytest.mark.parametrize("lines", [False, True], ids=["dicts", "lines"])
def test_a_scroll_sending_new_ids_at_one_second_forever_ends_with_the_same_second_error(
    serve: Serve, lines: bool
) -> None:
    server = serve(_new_ids_at_one_second_forever(10_000))
    client = client_for(server.url)
    started = time.monotonic()
    pull = (client.iter_event_lines if lines else client.iter_events)(*WINDOW, **SEQUENTIAL)
    try:
        with pytest.raises(Cloud4WiApiError, match="distinct events share the second") as raised:
            list(pull)
    finally:
        client.transport.close()
    assert time.monotonic() - started < 60
    message = str(raised.value)
    assert (
        f"ore than {MAX_EVENTS_AT_ONE_SECOND} distinct events share the second 2024-01-02T00:00:00Z"
        in message
    )
    assert f"organization {ORG}" in message
    assert "2024-01-02T00:00:00" in message  # the window
    assert "2024-01-02T01:00:00" in message
    assert pull.stats.events == MAX_EVENTS_AT_ONE_SECOND + 1  # counted, then refused
    # 10 pages of 10,000 new ids reach the limit; the 11th passes it.
    assert len(server.data_requests()) == MAX_EVENTS_AT_ONE_SECOND // 10_000 + 1


# ------------------------------------------------------------------------------------------ timestamps
#: Every event, sorted by instant, and the window it belongs to: A = [00:00, 01:00), B = [01:00, 02:00).
TIMESTAMPS = [
    ("2024-01-01T23:59:59.999Z", None),
    ("2024-01-02T01:00:00+01:00", "A"),  # 00:00:00Z, the first instant of A
    ("2024-01-02T00:10:00Z", "A"),
    ("2024-01-02T02:30:00+02:00", "A"),  # 00:30:00Z; as text it sorts after every bound of A and B
    ("2024-01-02T00:59:59.500Z", "A"),
    ("2024-01-02T02:59:59.999999+02:00", "A"),  # 00:59:59.999999Z
    ("2024-01-01T23:30:00-01:30", "B"),  # 01:00:00Z, the first instant of B; as text before both
    ("2024-01-02T01:00:00.000Z", "B"),
    ("2024-01-02T03:30:00+02:00", "B"),  # 01:30:00Z
    ("2024-01-02T01:59:59.250Z", "B"),
    ("2024-01-02T04:00:00+02:00", None),  # 02:00:00Z, the first instant after B
]
WINDOW_A = ("2024-01-02T00:00:00Z", "2024-01-02T01:00:00Z")
WINDOW_B = ("2024-01-02T01:00:00Z", "2024-01-02T02:00:00Z")


@pytest.mark.parametrize("lines", [False, True], ids=["dicts", "lines"])
def test_offset_and_fractional_timestamps_land_in_their_hourly_window_exactly_once(
    serve: Serve, lines: bool
) -> None:
    events = [event(n, stamp) for n, (stamp, _) in enumerate(TIMESTAMPS)]
    body = json.dumps({"events": events}, separators=(",", ":")).encode()

    def answer(request: Request) -> None:  # a server that ignores dateStart/dateEnd: the client decides
        request.send_bytes(body, headers={"Content-Type": "application/json"})

    server = serve(answer)
    client = client_for(server.url)
    try:
        pull = client.iter_event_lines if lines else client.iter_events
        got = {
            name: [json.loads(item) if lines else item for item in pull(*window, **SEQUENTIAL)]
            for name, window in (("A", WINDOW_A), ("B", WINDOW_B))
        }
    finally:
        client.transport.close()
    for name in ("A", "B"):
        expected = [f"e{n}" for n, (_, where) in enumerate(TIMESTAMPS) if where == name]
        assert [e["event"]["id"] for e in got[name]] == expected, name
        # Each event arrives as the API sent it, its createdAt untouched.
        assert [e["when"]["createdAt"] for e in got[name]] == [TIMESTAMPS[int(i[1:])][0] for i in expected]
    delivered = [e["event"]["id"] for e in got["A"] + got["B"]]
    assert len(delivered) == len(set(delivered)) == sum(1 for _, where in TIMESTAMPS if where)


# ------------------------------------------------------------------------------------------ secrets in repr
def _package_objects(roots: list[Any], max_depth: int = 6) -> list[Any]:
    """The roots, and every object of this package reachable from them through attributes and containers."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [(root, 0, True) for root in roots]
    while stack:
        obj, depth, is_root = stack.pop()
        if id(obj) in seen or depth > max_depth or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend((value, depth + 1, False) for value in obj.values())
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((value, depth + 1, False) for value in obj)
            continue
        ours = type(obj).__module__.startswith("airflow_provider_cloud4wi")
        if not (ours or is_root):
            continue
        found.append(obj)
        if ours:
            attributes = getattr(obj, "__dict__", {})
            stack.extend((value, depth + 1, False) for value in attributes.values())
    return found


@pytest.mark.parametrize("pull_kwargs", [SEQUENTIAL, {}], ids=["sequential", "default-concurrency"])
def test_no_object_of_a_pull_shows_the_client_secret_or_the_jwt_in_its_repr_or_str(
    serve: Serve, set_connection: Callable[..., str], pull_kwargs: dict[str, Any]
) -> None:
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
    from airflow_provider_cloud4wi.transfers.events_to_s3 import Cloud4WiEventsToS3Operator
    from airflow_provider_cloud4wi.triggers.events import Cloud4WiEventsTrigger

    def answer(request: Request) -> None:
        request.send_bytes(PAGE_OF_TWO, headers={"Content-Type": "application/json"})

    server = serve(answer)
    conn_id = set_connection(
        "cloud4wi_walked",
        "cloud4wi",
        host=server.url,
        login=CLIENT_KEY,
        password=CLIENT_SECRET,
        extra={"organization_id": ORG},
    )
    hook = Cloud4WiHook(conn_id, max_attempts=2, retry_wait_initial=0, retry_wait_max=0)
    pull = hook.iter_events(*WINDOW, **pull_kwargs)
    assert len(list(pull)) == 2
    assert hook.get_token() == TOKEN
    client = hook.client
    assert client.auth.token is not None
    operator = Cloud4WiEventsToS3Operator(
        task_id="export", s3_bucket="a-bucket", cloud4wi_conn_id=conn_id, window_start=WINDOW[0]
    )
    trigger = Cloud4WiEventsTrigger(cloud4wi_conn_id=conn_id, window_start=WINDOW[0], window_end=WINDOW[1])
    roots = [
        hook,
        hook.settings,
        client,
        client.settings,
        client.auth,
        client.auth.token,
        client.transport,
        client.retry,
        pull,
        pull.stats,
        operator,
        trigger,
        trigger.serialize(),
    ]
    try:
        walked = _package_objects(roots)
        names = {type(obj).__name__ for obj in walked}
        assert {"ClientSettings", "EventsClient", "TokenKeeper", "Token", "HttpTransport"} <= names, names
        assert {"Cloud4WiHook", "Cloud4WiEventsToS3Operator", "Cloud4WiEventsTrigger"} <= names, names
        for obj in walked:
            for text in (repr(obj), str(obj)):
                assert CLIENT_SECRET not in text, type(obj)
                assert TOKEN not in text, type(obj)
                assert TOKEN.split(".")[2] not in text, type(obj)  # nor the token's signature alone
    finally:
        hook.close()
    assert server.logins() >= 1


def test_a_refusal_echoing_the_bearer_token_does_not_show_the_token_or_the_secret(serve: Serve) -> None:
    def answer(request: Request) -> None:  # a server echoing the bearer token back in its refusal
        request.send_json({"message": f"forbidden: {request.handler.headers.get('Authorization')}"}, 403)

    server = serve(answer)
    with pytest.raises(Cloud4WiApiError, match="HTTP 403") as raised:
        _pull(server)
    assert TOKEN not in str(raised.value)
    assert CLIENT_SECRET not in str(raised.value)
    assert "Bearer ***" in str(raised.value)


# ---------------------------------------------------------------------------------- the default concurrency
# The cases above pull one window in one sequence, so that their servers can count its requests.
# Where the client cuts a window into time slices pulled in parallel (its default), every safety
# outcome must hold just the same: only the number of requests may differ.
def _default_pull(server: HostileServer, page_size: int = 10_000, **overrides: Any) -> list[Any]:
    client = client_for(server.url, **overrides)
    try:
        return list(client.iter_events(*WINDOW, page_size=page_size))
    finally:
        client.transport.close()


def test_at_the_default_concurrency_a_gzip_bomb_still_fails_with_the_size_error(
    serve: Serve, gzip_bomb: bytes
) -> None:
    server = serve(_gzip_reply(gzip_bomb))
    started = time.monotonic()
    with pytest.raises(Cloud4WiApiError, match=r"larger than 8 MiB"):
        _default_pull(server, max_reply_bytes=SMALL_CAP)
    assert time.monotonic() - started < 15


def test_at_the_default_concurrency_a_dripping_body_still_fails_within_the_deadline(serve: Serve) -> None:
    server = serve(_dripping(0.2))
    started = time.monotonic()
    with pytest.raises(Cloud4WiTransientError, match=r"took longer than 5 read timeouts"):
        _default_pull(server, timeout=1)
    assert time.monotonic() - started < 20


def test_at_the_default_concurrency_a_scroll_answering_the_same_page_forever_still_ends(serve: Serve) -> None:
    events = [event(n, f"2024-01-02T00:00:{n:02d}Z") for n in range(5)]
    server = serve(_same_page_forever(events))
    started = time.monotonic()
    # Which slice gives up first depends on timing, and each names the organization its own way.
    with pytest.raises(Cloud4WiApiError, match=re.escape(ORG)):
        _default_pull(server, page_size=5)  # full pages, so that each slice goes on scrolling
    assert time.monotonic() - started < 30
    assert len(server.data_requests()) < 500


def test_at_the_default_concurrency_offset_and_fractional_timestamps_still_land_exactly_once(
    serve: Serve,
) -> None:
    body = json.dumps({"events": [event(n, stamp) for n, (stamp, _) in enumerate(TIMESTAMPS)]}).encode()

    def answer(request: Request) -> None:
        request.send_bytes(body, headers={"Content-Type": "application/json"})

    server = serve(answer)
    client = client_for(server.url)
    try:
        got = {
            name: [e["event"]["id"] for e in client.iter_events(*w)]
            for name, w in (("A", WINDOW_A), ("B", WINDOW_B))
        }
    finally:
        client.transport.close()
    for name in ("A", "B"):
        assert got[name] == [f"e{n}" for n, (_, where) in enumerate(TIMESTAMPS) if where == name], name
