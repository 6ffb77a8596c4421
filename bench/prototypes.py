"""Prototypes of a faster A, applied as monkeypatches so each can be measured before it is adopted.

``python -m bench --proto gc+isal`` (or ``python -m bench.child A ... --proto gc,isal``) runs A
with these applied. Each prototype is written as the function the package would carry; the
report in bench/results.md gives the diff to apply. Names:

* ``gc``        pause the cyclic garbage collector while a page is parsed (``_decode``).
* ``rawread``   read each reply body with one ``raw.read()`` instead of requests' 10 KiB loop.
* ``isal``      compress with ``isal.igzip`` level 2 instead of ``gzip`` level 6 (plain gzip out).
* ``isal3``     the same at isal's level 3 (smaller output, half the speed of level 2).
* ``zng``       compress with ``zlib_ng.gzip_ng`` at level 6 (same level, smaller output).
* ``tgzip``     compress in a background thread (``isal.igzip_threaded``, level 2).
* ``tzng``      compress in a background thread (``zlib_ng.gzip_ng_threaded``, level 6).
* ``passthru``  parse each page with msgspec into one raw JSON slice per event plus the three
                fields the hook needs (type, id, createdAt), and write the slice as the line:
                every event is still parsed and checked, but not rebuilt as dicts and re-serialised.
* ``prefetch``  run the pull in a producer thread, a page ahead of the writer (bounded queue).
"""

from __future__ import annotations

import functools
import gc
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

PROTOTYPES: dict[str, Callable[[], None]] = {}


def _register(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def wrap(function: Callable[[], None]) -> Callable[[], None]:
        PROTOTYPES[name] = function
        return function

    return wrap


def apply(names: list[str]) -> None:
    """Apply the named prototypes (a list, or names joined by ``+``)."""
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook

    if hasattr(Cloud4WiHook, "iter_event_lines"):
        raise SystemExit(
            "The prototypes patch the package as it was before 9ea13b2, which applied them; run them "
            "on that code: python -m bench --proto ... (rows A0+...), or python -m bench.candidates."
        )
    for name in [n for item in names for n in item.split("+") if n]:
        if name not in PROTOTYPES:
            raise SystemExit(f"unknown prototype {name!r}; known: {', '.join(sorted(PROTOTYPES))}")
        PROTOTYPES[name]()


# ----------------------------------------------------------------------------------------------- gc
def loads_without_gc(data: bytes) -> Any:
    """
    Parse a JSON document with the cyclic garbage collector paused.

    A 10,000-event page makes ~250,000 dicts, lists and strings: each 700 allocations trigger a
    young collection, and every few pages a full one walks every object of the process (Airflow's
    included). Parsed JSON is a tree, so it can never be cyclic garbage: pausing the collector
    while the tree is built is safe, and roughly halves the parse time in a worker process.
    """
    import orjson

    if not gc.isenabled():
        return orjson.loads(data)
    gc.disable()
    try:
        return orjson.loads(data)
    finally:
        gc.enable()


@_register("gc")
def _gc() -> None:
    from airflow_provider_cloud4wi.hooks import cloud4wi

    cloud4wi._loads = loads_without_gc


# ----------------------------------------------------------------------------------------- rawread
@_register("rawread")
def _rawread() -> None:
    import requests
    import urllib3

    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook, Cloud4WiTransientError

    def _send_once(
        self: Cloud4WiHook,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json_body: dict[str, Any] | None,
        authenticated: bool,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._current_token()}"} if authenticated else None
        try:
            response = self.session.request(
                method,
                self.settings.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=self._timeout(),
                stream=True,
            )
            try:
                # One read of the whole body: requests' .content reads 10 KiB at a time through
                # urllib3, ~500 Python-level reads per 5 MB page.
                response._content = response.raw.read(decode_content=True)
                response._content_consumed = True
            finally:
                response.close()
            return response
        except requests.Timeout as err:
            raise Cloud4WiTransientError(f"timed out on {method} {path} ({type(err).__name__})") from None
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,  # a body read failing: ProtocolError, ReadTimeoutError...
        ) as err:
            raise Cloud4WiTransientError(
                f"connection dropped on {method} {path} ({type(err).__name__})"
            ) from None

    Cloud4WiHook._send_once = _send_once  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------- compressors
def _use_gzip_factory(factory: Callable[[Any], Any]) -> None:
    from airflow_provider_cloud4wi import writer
    from airflow_provider_cloud4wi.transfers import base

    base.write_parts = functools.partial(writer.write_parts, gzip_factory=factory)  # type: ignore[assignment]


def isal_gzip(raw: Any, level: int = 2) -> Any:
    """``isal.igzip`` (Intel ISA-L): plain gzip, ~10x zlib level 6's speed, ~1/3 larger at level 2."""
    from isal import igzip

    return igzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


def zlib_ng_gzip(raw: Any, level: int = 6) -> Any:
    """``zlib_ng.gzip_ng`` at zlib's default level: ~1.8x faster than zlib, slightly smaller output."""
    from zlib_ng import gzip_ng

    return gzip_ng.GzipNGFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


def threaded_isal_gzip(raw: Any, level: int = 2) -> Any:
    """
    Compress in one background thread (``isal.igzip_threaded``): plain single-member gzip.

    The caller's ``write`` only queues 1 MiB blocks; ISA-L compresses them with the GIL released,
    on the second core, while the main thread parses the next page. ``close`` finishes the member
    and leaves ``raw`` open (a file object passed in is never closed by it).
    """
    from isal import igzip_threaded

    return igzip_threaded.open(raw, "wb", compresslevel=level, threads=1)


def threaded_zlib_ng_gzip(raw: Any, level: int = 6) -> Any:
    """As :func:`threaded_isal_gzip`, with zlib-ng at zlib's default level 6."""
    from zlib_ng import gzip_ng_threaded

    return gzip_ng_threaded.open(raw, "wb", compresslevel=level, threads=1)


@_register("plain")
def _plain() -> None:
    """No compression at all (to see what compression costs): plain .jsonl out."""
    from airflow_provider_cloud4wi import writer
    from airflow_provider_cloud4wi.transfers import base

    def write_parts(documents: Any, **kwargs: Any) -> Any:
        return writer.write_parts(documents, **{**kwargs, "compression": None})

    base.write_parts = write_parts  # type: ignore[assignment]


@_register("tgzip1")
def _tgzip1() -> None:
    _use_gzip_factory(functools.partial(threaded_isal_gzip, level=1))


@_register("isal")
def _isal() -> None:
    _use_gzip_factory(isal_gzip)


@_register("isal3")
def _isal3() -> None:
    _use_gzip_factory(functools.partial(isal_gzip, level=3))


@_register("zng")
def _zng() -> None:
    _use_gzip_factory(zlib_ng_gzip)


@_register("tgzip")
def _tgzip() -> None:
    _use_gzip_factory(threaded_isal_gzip)


@_register("tgzip3")
def _tgzip3() -> None:
    _use_gzip_factory(functools.partial(threaded_isal_gzip, level=3))


@_register("tzng")
def _tzng() -> None:
    _use_gzip_factory(threaded_zlib_ng_gzip)


# -------------------------------------------------------------------------------------- pass-through
try:  # msgspec is only needed by the pass-through prototype
    import msgspec

    class _Page(msgspec.Struct):
        events: list[msgspec.Raw]
        scrollId: str | None = None

    class _Body(msgspec.Struct):
        type: Any = None
        id: Any = None

    class _When(msgspec.Struct):
        createdAt: Any = None

    # Only the fields the hook reads are typed: msgspec validates and skips everything else
    # without building objects. ``Any`` where the API might send another type: the slow path
    # (a full parse of that one event) then decides, with the hook's own rules and errors.
    class _Keys(msgspec.Struct):
        event: _Body | None = None
        when: _When | None = None

except ImportError:  # pragma: no cover
    msgspec = None  # type: ignore[assignment]


def _passthru_types() -> tuple[Any, Any]:
    return msgspec.json.Decoder(_Page), msgspec.json.Decoder(_Keys)


class RawEvents(list):  # type: ignore[type-arg]
    """A page's events as raw JSON slices; ``body_has_newline`` says whether they may span lines."""

    body_has_newline = False


@_register("passthru")
def _passthru() -> None:
    import orjson

    from airflow_provider_cloud4wi import writer
    from airflow_provider_cloud4wi.hooks import cloud4wi
    from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook, PullStats, _TimeCursor

    page_decoder, keys_decoder = _passthru_types()
    original_loads = cloud4wi._loads

    def decode_page(data: bytes) -> Any:
        """An events page as ``{"events": RawEvents, "scrollId": ...}``; anything else as before."""
        try:
            page = page_decoder.decode(data)
        except msgspec.ValidationError:
            return original_loads(data)  # not an events page (login reply, error body): parse it all
        except msgspec.DecodeError:
            raise ValueError("malformed JSON") from None  # _decode turns this into a transient error
        events = RawEvents(page.events)
        # JSON strings cannot hold a raw newline, so one outside them is whitespace between tokens:
        # a compact body (the API's) has none, and its slices are single lines as they are.
        events.body_has_newline = b"\n" in data or b"\r" in data
        result: dict[str, Any] = {"events": events}
        if page.scrollId is not None:
            result["scrollId"] = page.scrollId
        return result

    def _deliver(
        self: Cloud4WiHook,
        events: list[Any],
        cursor: _TimeCursor,
        bounds: tuple[str, str],
        stats: PullStats,
    ) -> Iterator[Any]:
        if not isinstance(events, RawEvents):
            yield from original_deliver(self, events, cursor, bounds, stats)
            return
        first, last = bounds
        decode = keys_decoder.decode
        accept = cursor.accept
        reparse = events.body_has_newline
        for raw in events:
            try:
                keys = decode(raw)
                created_at = keys.when.createdAt
                body = keys.event
                fast = (
                    isinstance(created_at, str)
                    and len(created_at) == 20
                    and created_at[19] == "Z"
                    and body is not None
                    and body.id
                    and isinstance(body.id, str)
                    and isinstance(body.type, str)
                )
            except (msgspec.ValidationError, AttributeError):
                fast = False
            if not fast:  # unusual event: the full parse and the hook's own rules (and errors)
                yield from original_deliver(self, [orjson.loads(bytes(raw))], cursor, bounds, stats)
                continue
            if not first <= created_at <= last:
                stats.outside_window_dropped += 1
                continue
            if not accept(created_at, f"{body.type}:{body.id}"):
                stats.duplicates_dropped += 1
                continue
            stats.events += 1
            yield orjson.dumps(orjson.loads(raw)) if reparse else raw

    original_deliver = Cloud4WiHook._deliver
    cloud4wi._loads = _chain_gc(decode_page)
    Cloud4WiHook._deliver = _deliver  # type: ignore[method-assign]
    original_dumps = writer._dumps

    def dumps(document: Any) -> Any:
        # A raw slice is already one compact JSON line; everything else is serialised as before.
        return document if isinstance(document, msgspec.Raw) else original_dumps(document)

    writer._dumps = dumps


def _chain_gc(function: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def call(data: bytes) -> Any:
        if not gc.isenabled():
            return function(data)
        gc.disable()
        try:
            return function(data)
        finally:
            gc.enable()

    return call


# ---------------------------------------------------------------------------------------- prefetch
_DONE = object()


def prefetched(source: Iterator[Any], *, batch: int = 10_000, depth: int = 2) -> Iterator[Any]:
    """
    Iterate ``source`` in a producer thread, up to ``depth`` batches ahead of the consumer.

    The producer runs the pull exactly as before (same requests, same retries, same order); it
    only runs ahead, so the next reply downloads while the current page is written. Exceptions
    reach the consumer at the point they happened; a consumer that stops early stops the producer
    (and closes ``source`` in the producer's thread).
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        items: list[Any] = []
        try:
            for item in source:
                items.append(item)
                if len(items) >= batch:
                    if not put(items):
                        return
                    items = []
            if items and not put(items):
                return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="cloud4wi-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            items = handoff.get()
            if items is _DONE:
                return
            if isinstance(items, BaseException):
                raise items
            yield from items
    finally:
        stop.set()
        producer.join()


@_register("prefetch")
def _prefetch() -> None:
    from airflow_provider_cloud4wi.transfers.base import Cloud4WiEventsTransferBaseOperator

    original = Cloud4WiEventsTransferBaseOperator._events

    def _events(self: Any, hook: Any, window: Any) -> Iterator[Any]:
        return prefetched(original(self, hook, window))

    Cloud4WiEventsTransferBaseOperator._events = _events  # type: ignore[method-assign]
