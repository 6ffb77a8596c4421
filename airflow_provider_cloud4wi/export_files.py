"""Write one export's events to local files in the chosen format, optionally one group per event type.

This module knows nothing of Airflow or object storage: it routes a stream of events to the
JSON Lines writer (:mod:`airflow_provider_cloud4wi.writer`) or the Parquet writer
(:mod:`airflow_provider_cloud4wi.parquet`) and hands back the files, grouped, for a transfer to
upload. The stream is consumed once, as it arrives.

Grouping by event type
----------------------
With ``partition_by="event_type"`` each event goes to the group named by its ``event.type``, which
becomes a path segment (``event_type=<group>``) of the objects. So only a type made of lower-case
letters, digits and ``_`` (1 to 64 characters, :data:`EVENT_TYPE_PATTERN`) names a group of its
own, whether or not it is one of the documented types (a type the API adds later gets its own
group). Every other event goes to the group :data:`UNKNOWN_EVENT_TYPE` (``"unknown"``), and is
written unchanged: one whose ``event.type`` is missing, not a string, or any other text (``"../x"``,
``"Visit"``, ``""``), one that is not a JSON object, and one of a new valid type once
:data:`MAX_EVENT_TYPE_GROUPS` groups are open already (which bounds the open files). A document
whose type really is ``"unknown"`` shares that group; its rows still carry their own type.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_cloud4wi import parquet, writer
from airflow_provider_cloud4wi.writer import PartFile, check_max_events_per_file

__all__ = [
    "EVENT_TYPE_PATTERN",
    "FILE_FORMATS",
    "MAX_EVENT_TYPE_GROUPS",
    "PARTITION_BY",
    "UNKNOWN_EVENT_TYPE",
    "FileGroup",
    "check_file_format",
    "check_partition_by",
    "event_type_group",
    "file_extension",
    "media_type",
    "resolve_compression",
    "write_export_files",
]

#: The values ``file_format`` accepts.
FILE_FORMATS: tuple[str, ...] = ("jsonl", "parquet")
#: The values ``partition_by`` accepts.
PARTITION_BY: tuple[str | None, ...] = (None, "event_type")
#: An event type that may name a group (and so a path segment) of its own.
EVENT_TYPE_PATTERN = re.compile(r"[a-z0-9_]{1,64}")
#: The group of the events whose type cannot name one.
UNKNOWN_EVENT_TYPE = "unknown"
#: The most groups named by a type; the API documents 13 types.
MAX_EVENT_TYPE_GROUPS = 32

_COMPRESSIONS: dict[str, tuple[str | None, ...]] = {
    "jsonl": ("auto", *writer.COMPRESSIONS),
    "parquet": ("auto", *parquet.PARQUET_COMPRESSIONS),
}
_AUTO_COMPRESSION = {"jsonl": "gzip", "parquet": "zstd"}
# Several types buffer at once: past this many bytes in all, the largest buffers are written out.
_BUFFER_BUDGET_BYTES = 32 << 20
_BUDGET_CHECK_EVERY = 1_000

_loads: Callable[[bytes], Any]
try:  # orjson parses several times faster; the grouping is the same without it.
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


def _choices(values: Iterable[str | None]) -> str:
    return ", ".join("None" if value is None else f'"{value}"' for value in values)


def check_file_format(file_format: str) -> str:
    """
    Return ``file_format`` if it is one of :data:`FILE_FORMATS`, else raise :class:`ValueError`.

    This does not check that pyarrow is installed: call
    :func:`airflow_provider_cloud4wi.parquet.check_parquet_available` for that.

    :param file_format: ``"jsonl"`` or ``"parquet"``.
    """
    if not isinstance(file_format, str) or file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {_choices(FILE_FORMATS)}, not {file_format!r}.")
    return file_format


def check_partition_by(partition_by: str | None) -> str | None:
    """
    Return ``partition_by`` if it is one of :data:`PARTITION_BY`, else raise :class:`ValueError`.

    :param partition_by: None (one group) or ``"event_type"`` (one group per event type).
    """
    if partition_by is not None and (not isinstance(partition_by, str) or partition_by not in PARTITION_BY):
        raise ValueError(f"partition_by must be one of {_choices(PARTITION_BY)}, not {partition_by!r}.")
    return partition_by


def resolve_compression(file_format: str, compression: str | None) -> str | None:
    """
    Return the codec ``compression`` means for ``file_format``, or raise :class:`ValueError`.

    ``"auto"`` is gzip for JSON Lines and zstd for Parquet; None is no compression.

    :param file_format: ``"jsonl"`` or ``"parquet"``.
    :param compression: ``"auto"``, None, ``"gzip"``, or for Parquet also ``"zstd"`` or ``"snappy"``.
    """
    allowed = _COMPRESSIONS[check_file_format(file_format)]
    if compression is not None and (not isinstance(compression, str) or compression not in allowed):
        raise ValueError(
            f'compression for file_format="{file_format}" must be one of {_choices(allowed)}, '
            f"not {compression!r}."
        )
    return _AUTO_COMPRESSION[file_format] if compression == "auto" else compression


def file_extension(file_format: str, compression: str | None) -> str:
    """
    Return the file name extension of the output: ``.jsonl.gz``, ``.jsonl`` or ``.parquet``.

    A Parquet file compresses inside, page by page: its name is the same whatever the codec.

    :param file_format: ``"jsonl"`` or ``"parquet"``.
    :param compression: as for :func:`resolve_compression` (``"auto"`` included).
    """
    codec = resolve_compression(file_format, compression)
    return parquet.FILE_EXTENSION if file_format == "parquet" else writer.file_extension(codec)


def media_type(file_format: str, compression: str | None) -> str:
    """
    Return the Content-Type of the output.

    :param file_format: ``"jsonl"`` or ``"parquet"``.
    :param compression: as for :func:`resolve_compression` (``"auto"`` included).
    """
    codec = resolve_compression(file_format, compression)
    return parquet.MEDIA_TYPE if file_format == "parquet" else writer.media_type(codec)


@dataclass(frozen=True)
class FileGroup:
    """
    The local files of one group of an export.

    :param event_type: the group's event type (see the module's description), or None when the
        export is not partitioned.
    :param parts: the group's files, in order; at least one.
    """

    event_type: str | None
    parts: list[PartFile]

    @property
    def events(self) -> int:
        """How many events the group's files hold."""
        return sum(part.events for part in self.parts)


def event_type_group(document: Mapping[str, Any] | bytes) -> str:
    """
    Return the group an event belongs to when partitioning by event type.

    Its ``event.type`` when that matches :data:`EVENT_TYPE_PATTERN`, else :data:`UNKNOWN_EVENT_TYPE`;
    never raises, whatever the document holds.

    :param document: the event: one JSON text (``bytes``) or a mapping.
    """
    if isinstance(document, bytes):
        try:
            document = _loads(document)
        except (ValueError, RecursionError):  # not JSON: kept, in the unknown group
            return UNKNOWN_EVENT_TYPE
    event = document.get("event") if isinstance(document, Mapping) else None
    event_type = event.get("type") if isinstance(event, Mapping) else None
    if isinstance(event_type, str) and EVENT_TYPE_PATTERN.fullmatch(event_type):
        return event_type
    return UNKNOWN_EVENT_TYPE


class _Sink(Protocol):
    """What both writers' sinks offer: :class:`writer.JsonLinesSink`, :class:`parquet.ParquetSink`."""

    @property
    def buffered_bytes(self) -> int: ...

    def add(self, document: Mapping[str, Any] | bytes) -> None: ...

    def flush(self) -> None: ...

    def finish(self) -> list[PartFile]: ...

    def discard(self) -> None: ...


#: Called with a group's event type (None when not partitioned) and each part once it is complete.
PartCallback = Callable[[str | None, PartFile], None]
#: Builds the sink of one group from its directory and its event type.
_NewSink = Callable[[Path, str | None], _Sink]


def _sink_factory(
    file_format: str, compression: str | None, max_events_per_file: int | None, on_part: PartCallback | None
) -> _NewSink:
    def new_sink(directory: Path, event_type: str | None) -> _Sink:
        completed = None if on_part is None else functools.partial(on_part, event_type)
        if file_format == "parquet":
            return parquet.ParquetSink(
                directory, compression=compression, max_events_per_file=max_events_per_file, on_part=completed
            )
        return writer.JsonLinesSink(
            directory, compression=compression, max_events_per_file=max_events_per_file, on_part=completed
        )

    return new_sink


def _write_one(lines: Iterable[Mapping[str, Any] | bytes], sink: _Sink) -> list[FileGroup]:
    try:
        for line in lines:
            sink.add(line)
        return [FileGroup(None, sink.finish())]
    except BaseException:
        sink.discard()
        raise


def _write_by_type(
    lines: Iterable[Mapping[str, Any] | bytes], directory: Path, new_sink: _NewSink
) -> list[FileGroup]:
    sinks: dict[str, _Sink] = {}
    try:
        for count, line in enumerate(lines, 1):
            group = event_type_group(line)
            sink = sinks.get(group)
            if sink is None:
                named = len(sinks) - (UNKNOWN_EVENT_TYPE in sinks)
                if named >= MAX_EVENT_TYPE_GROUPS:
                    group = UNKNOWN_EVENT_TYPE
                sink = sinks.get(group)
                if sink is None:
                    # The group name is safe as a directory name: it matched EVENT_TYPE_PATTERN.
                    group_dir = directory / group
                    group_dir.mkdir()
                    sink = sinks[group] = new_sink(group_dir, group)
            sink.add(line)
            if count % _BUDGET_CHECK_EVERY == 0:
                _keep_within_budget(list(sinks.values()))
        return [FileGroup(group, sinks.pop(group).finish()) for group in sorted(sinks)]
    except BaseException:
        for sink in sinks.values():
            with contextlib.suppress(Exception):
                sink.discard()
        raise


def _keep_within_budget(sinks: list[_Sink]) -> None:
    """Write out the largest buffers until all of them together are back under half the budget."""
    total = sum(sink.buffered_bytes for sink in sinks)
    if total <= _BUFFER_BUDGET_BYTES:
        return
    for sink in sorted(sinks, key=lambda s: s.buffered_bytes, reverse=True):
        total -= sink.buffered_bytes
        sink.flush()
        if total <= _BUFFER_BUDGET_BYTES // 2:
            return


@contextlib.contextmanager
def write_export_files(
    lines: Iterable[Mapping[str, Any] | bytes],
    *,
    file_format: str = "jsonl",
    compression: str | None = "auto",
    max_events_per_file: int | None = None,
    partition_by: str | None = None,
    temp_dir: str | Path | None = None,
    on_part: PartCallback | None = None,
) -> Iterator[list[FileGroup]]:
    """
    Write every event into local files of ``file_format`` and yield them, grouped.

    The whole stream is consumed before the ``with`` block is entered. Not partitioned: exactly
    one group (``event_type`` None) of at least one part, an empty file when there is no event.
    Partitioned by event type: one group per type present (see the module's description for the
    type that names a group), sorted by name, each event in its group in stream order; ``[]``
    when there is no event. Each group is split into parts of at most ``max_events_per_file``
    events. Memory holds the buffers of the open groups only, whatever the stream's size. The
    files are in a private temporary directory (``cloud4wi-events-*``) that is removed when the
    block exits, and also when the stream or the writing fails (every open file is closed first).

    .. code-block:: python

        with write_export_files(hook.iter_event_lines(start, end), file_format="parquet",
                                partition_by="event_type") as groups:
            for group in groups:
                for part in group.parts:
                    upload(part.path)

    :param lines: the events, in output order: ``bytes`` of one compact JSON document each (as
        ``Cloud4WiHook.iter_event_lines`` yields them), or mappings.
    :param file_format: ``"jsonl"`` (default) or ``"parquet"`` (needs the ``parquet`` extra).
    :param compression: ``"auto"`` (default: gzip for JSON Lines, zstd for Parquet), None, or a
        codec of the format: see :func:`resolve_compression`.
    :param max_events_per_file: start a new part of a group after this many events; None for one
        file per group.
    :param partition_by: None (default) or ``"event_type"``.
    :param temp_dir: where to create the temporary directory; default: the system's temp dir.
    :param on_part: called with the group's event type and each part as soon as it is complete,
        while the stream is still being read (to upload it and free its disk at once); when it
        raises, the writing stops and the error propagates.
    """
    codec = resolve_compression(file_format, compression)
    max_events_per_file = check_max_events_per_file(max_events_per_file)
    partition_by = check_partition_by(partition_by)
    if file_format == "parquet":
        parquet.check_parquet_available()
    new_sink = _sink_factory(file_format, codec, max_events_per_file, on_part)
    directory = Path(tempfile.mkdtemp(prefix="cloud4wi-events-", dir=temp_dir))
    try:
        if partition_by is None:
            groups = _write_one(lines, new_sink(directory, None))
        else:
            groups = _write_by_type(lines, directory, new_sink)
        yield groups
    finally:
        shutil.rmtree(directory, ignore_errors=True)
