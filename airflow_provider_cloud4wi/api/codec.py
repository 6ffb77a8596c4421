"""JSON in and out of the client: the fastest backend installed, probed once, and raw event pages.

orjson parses a 10,000-event page several times faster than the standard library; msgspec lets the
pull decode only the three fields it reads from each event and pass the API's own bytes on.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

loads: Callable[[bytes], Any]
dumps: Callable[[Any], bytes]
try:
    import orjson

    loads = orjson.loads
    dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    loads = json.loads

    def dumps(document: Any) -> bytes:
        """Compact UTF-8 JSON, as orjson writes it."""
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]


def parse(data: bytes) -> Any:
    """
    Parse a reply body with the cyclic garbage collector paused.

    A 10,000-event page is ~250,000 dicts, lists and strings: with the collector on, building it
    triggers hundreds of young collections and, every few pages, a full one over every object of
    the worker process (Airflow's included), which doubled the parse time. Parsed JSON is a tree
    and never cyclic garbage, so nothing is lost by not collecting while it is built.
    """
    if not gc.isenabled():
        return loads(data)
    gc.disable()
    try:
        return loads(data)
    finally:
        gc.enable()


if msgspec is not None:

    class _RawPage(msgspec.Struct):
        """An events page with each event left as its raw JSON text (validated, not decoded)."""

        events: list[msgspec.Raw]
        scrollId: str | None = None

    class _EventBody(msgspec.Struct):
        type: Any = None
        id: Any = None

    class _EventWhen(msgspec.Struct):
        createdAt: Any = None

    class _EventKeys(msgspec.Struct):
        """The only fields of an event the pull reads; msgspec skips the rest without building it."""

        event: _EventBody | None = None
        when: _EventWhen | None = None

    _RAW_PAGE = msgspec.json.Decoder(_RawPage)
    _EVENT_KEYS = msgspec.json.Decoder(_EventKeys)

    # The same three fields in their usual form, checked by msgspec for a whole page at once: a
    # page that passes needs no per-event test of types and forms. ``gc=False``: these structs
    # hold only strings, and untracked objects cost the collector nothing.
    class _UsualBody(msgspec.Struct, gc=False):
        type: str
        id: Annotated[str, msgspec.Meta(min_length=1)]

    class _UsualWhen(msgspec.Struct, gc=False):
        # The final "Z" is checked apart (:func:`_usual_keys`): a pattern here doubles the decode.
        createdAt: Annotated[str, msgspec.Meta(min_length=20, max_length=20)]

    class _UsualEvent(msgspec.Struct, gc=False):
        event: _UsualBody
        when: _UsualWhen

    class _UsualPage(msgspec.Struct, gc=False):
        events: list[_UsualEvent]

    _USUAL_PAGE = msgspec.json.Decoder(_UsualPage)


@dataclass(frozen=True)
class UsualKeys:
    """
    The keys of a page whose every event has them in their usual form: strings, a non-empty id
    and ``when.createdAt`` as ``YYYY-MM-DDTHH:MM:SSZ``.

    :param events: per event, ``.event.type``, ``.event.id`` and ``.when.createdAt``.
    :param created: per event, ``when.createdAt``.
    """

    events: list[Any]
    created: list[str]


class RawEvents(list):  # type: ignore[type-arg]
    """A page's events as raw JSON slices (``msgspec.Raw``), from :func:`parse_events_page`."""

    #: Whether the body had line breaks between tokens, so a slice may span lines.
    multiline = False
    #: The page's keys when every event has them in their usual form, else None.
    usual_keys: UsualKeys | None = None


def parse_events_page(data: bytes, *, raw: bool) -> Any:
    """
    Parse an events page; with ``raw`` (and msgspec installed) leave each event as its JSON text.

    A raw page is ``{"events": RawEvents, "scrollId": ...}``: the whole body is validated, but each
    event stays a slice of it. A body of another shape (an error, a page with a non-string
    scrollId...) is parsed fully, as :func:`parse` would.
    """
    if not raw or msgspec is None:
        return parse(data)
    try:
        page = _RAW_PAGE.decode(data)
    except msgspec.ValidationError:
        return parse(data)
    except msgspec.DecodeError as err:
        raise ValueError(str(err)) from None
    events = RawEvents(page.events)
    # A JSON string cannot hold a raw line break, so one anywhere in the body is whitespace between
    # tokens: the API's compact bodies have none, and then every slice is a single line as it is.
    events.multiline = b"\n" in data or b"\r" in data
    if not events.multiline:
        events.usual_keys = _usual_keys(data)
    result: dict[str, Any] = {"events": events}
    if page.scrollId is not None:
        result["scrollId"] = page.scrollId
    return result


def _usual_keys(data: bytes) -> UsualKeys | None:
    """Every event's type, id and creation time, decoded in one pass; None if any is unusual."""
    try:
        events = _USUAL_PAGE.decode(data).events
    except ValueError:  # a type the page does not have, or text that is not UTF-8: unusual
        return None
    created = [event.when.createdAt for event in events]
    # Every 20th character of the joined times is a time's last: one "Z" each, or not usual.
    if "".join(created)[19::20].count("Z") != len(created):
        return None
    return UsualKeys(events, created)


def event_keys_decoder() -> tuple[Callable[[Any], Any], type[Exception]]:
    """
    The decoder of an event's ``event.type``, ``event.id`` and ``when.createdAt`` (skipping the
    rest), and the error it raises when those are not objects. Needs msgspec: raw pages exist
    only with it.
    """
    return _EVENT_KEYS.decode, msgspec.ValidationError


def is_canonical_utc(created_at: str) -> bool:
    """Whether a timestamp is in the API's usual form, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return len(created_at) == 20 and created_at[19] == "Z"


def excerpt(data: bytes) -> str:
    """The first 100 bytes of a body, as printable text, for error messages."""
    return repr(data[:100].decode("utf-8", errors="replace"))
