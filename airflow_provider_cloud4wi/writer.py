"""Write a stream of event documents to local JSON Lines files, gzip-compressed or not, in parts.

This module knows nothing of Airflow or object storage. :func:`write_parts` consumes an iterable
of documents as it arrives, one line per document, into numbered files inside a private temporary
directory, and removes that directory when its ``with`` block ends, whether the block succeeded
or not. Only one buffer of at most about a megabyte is held in memory, whatever the stream's size
(plus, with the default compressor, the one block being compressed in its thread).
:class:`JsonLinesSink` is the same writing, fed one document at a time, for a caller that keeps
several outputs open at once.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

__all__ = [
    "COMPRESSIONS",
    "BinarySink",
    "CompressedStream",
    "GzipFactory",
    "JsonLinesSink",
    "PartFile",
    "check_compression",
    "check_max_events_per_file",
    "default_gzip",
    "file_extension",
    "media_type",
    "stdlib_gzip",
    "threaded_isal_gzip",
    "write_blocks",
    "write_parts",
    "write_stream",
]

#: The values ``compression`` accepts.
COMPRESSIONS: tuple[str | None, ...] = ("gzip", None)

#: zlib's own default: most of level 9's ratio on JSON text at a fraction of its CPU time.
GZIP_LEVEL = 6

#: ISA-L's level for :func:`threaded_isal_gzip` (its own default): ~10x zlib level 6's speed on one
#: core, output about a third larger on event JSON. Level 3 is ~5x and a quarter larger, but on two
#: cores its thread then competes with the pull and was slower end to end (bench/candidates.md).
ISAL_GZIP_LEVEL = 2

_FLUSH_BYTES = 1 << 20


class CompressedStream(Protocol):
    """What a :data:`GzipFactory` returns: bytes in, compressed bytes out to the wrapped file."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Compress ``data`` into the wrapped file."""
        ...

    def close(self) -> None:
        """Finish the gzip member, leaving the wrapped file open."""
        ...


class BinarySink(Protocol):
    """Where :func:`write_stream` writes: any object with a binary ``write`` and a ``flush``."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        """Take ``data``; return how many bytes were taken (all)."""
        ...

    def flush(self) -> None:
        """Hand on what was taken, as far as the sink does that."""
        ...


#: Wraps an open, writable binary file in a stream that gzip-compresses into it. Closing the
#: returned stream must finish the gzip member and leave the wrapped file open.
GzipFactory = Callable[[IO[bytes]], CompressedStream]


def _dumps_stdlib(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_dumps: Callable[[Any], bytes]
try:  # orjson serialises several times faster than json; the output is the same compact UTF-8.
    import orjson

    _dumps = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment
    _dumps = _dumps_stdlib


def stdlib_gzip(raw: IO[bytes]) -> CompressedStream:
    """
    Compress into ``raw`` with the standard library's :class:`gzip.GzipFile`.

    The header carries no file name and a zero timestamp, so the same events always give the same
    bytes. :func:`default_gzip` falls back to it where ``isal`` is not installed; another
    gzip-compatible compressor (for example ``zlib_ng.gzip_ng.GzipNGFile``, which takes the same
    arguments) can be passed to :func:`write_parts` instead.

    :param raw: the open binary file the compressed bytes go to.
    """
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0)


try:
    import isal.igzip_threaded  # noqa: F401 - probed here, imported where used

    _HAVE_ISAL = True
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_ISAL = False


def threaded_isal_gzip(raw: IO[bytes]) -> CompressedStream:
    """
    Compress into ``raw`` with ISA-L in a background thread (``isal.igzip_threaded``).

    The output is one plain gzip member (zero timestamp, no name) that every gzip reader opens.
    ``write`` only queues 1 MiB blocks; ISA-L compresses them with the GIL released, on another
    core, while the caller goes on pulling and parsing. ``close`` finishes the member and leaves
    ``raw`` open.

    :param raw: the open binary file the compressed bytes go to.
    """
    from isal import igzip_threaded

    stream: CompressedStream = igzip_threaded.open(raw, "wb", compresslevel=ISAL_GZIP_LEVEL, threads=1)
    return stream


def default_gzip(raw: IO[bytes]) -> CompressedStream:
    """
    The :data:`GzipFactory` used when none is given: :func:`threaded_isal_gzip` where ``isal`` is
    installed (the ``fast`` extra), else :func:`stdlib_gzip`.

    :param raw: the open binary file the compressed bytes go to.
    """
    return threaded_isal_gzip(raw) if _HAVE_ISAL else stdlib_gzip(raw)


def check_compression(compression: str | None) -> str | None:
    """
    Return ``compression`` if it is one of :data:`COMPRESSIONS`, else raise :class:`ValueError`.

    :param compression: ``"gzip"`` or None.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f'compression must be "gzip" or None (no compression), not {compression!r}.')
    return compression


def check_max_events_per_file(max_events_per_file: int | None) -> int | None:
    """
    Return ``max_events_per_file`` if it is None or a positive integer, else raise :class:`ValueError`.

    :param max_events_per_file: the most events one file may hold; None for no limit.
    """
    if max_events_per_file is None:
        return None
    if (
        isinstance(max_events_per_file, bool)
        or not isinstance(max_events_per_file, int)
        or max_events_per_file < 1
    ):
        raise ValueError(
            f"max_events_per_file must be a positive integer or None (one file), not {max_events_per_file!r}."
        )
    return max_events_per_file


def file_extension(compression: str | None) -> str:
    """
    Return the file name extension of the output: ``.jsonl.gz`` or ``.jsonl``.

    :param compression: ``"gzip"`` or None.
    """
    return ".jsonl.gz" if check_compression(compression) == "gzip" else ".jsonl"


def media_type(compression: str | None) -> str:
    """
    Return the Content-Type of the output.

    Gzip output is typed as a gzip file rather than as JSON with a gzip Content-Encoding: with
    that encoding, some clients and GCS's transcoding hand readers decompressed bytes under a
    ``.gz`` name.

    :param compression: ``"gzip"`` or None.
    """
    return "application/gzip" if check_compression(compression) == "gzip" else "application/x-ndjson"


@dataclass(frozen=True)
class PartFile:
    """
    One local file written by :func:`write_parts`.

    :param index: the file's position in the output, from 0.
    :param path: where the file is; it disappears with the temporary directory.
    :param events: how many documents (lines) it holds.
    :param size_bytes: its size on disk, after compression.
    """

    index: int
    path: Path
    events: int
    size_bytes: int


class _Lines:
    """Lines going into a writable binary sink, through the optional compressor, via a buffer."""

    def __init__(self, raw: IO[bytes], gzip_factory: GzipFactory | None) -> None:
        self.events = 0
        self.buffer = bytearray()
        self._raw = raw
        self._compressor: CompressedStream | None = None
        if gzip_factory is not None:
            self._compressor = gzip_factory(raw)

    def add(self, line: bytes) -> None:
        self.buffer += line
        self.buffer += b"\n"
        self.events += 1
        # Handing the compressor one large block instead of one line at a time is much faster.
        if len(self.buffer) >= _FLUSH_BYTES:
            self.flush()

    def add_block(self, block: bytes) -> None:
        """
        Add lines already joined, each ending with a line break.

        They go on in chunks of exactly ``_FLUSH_BYTES``, wherever the blocks begin and end: the
        compressed bytes then depend on the lines only, not on how the pull cut them into pages.
        """
        self.events += block.count(b"\n")
        sink = self._compressor or self._raw
        rest = memoryview(block)
        if self.buffer:
            room = _FLUSH_BYTES - len(self.buffer)
            self.buffer += rest[:room]
            rest = rest[room:]
            if len(self.buffer) < _FLUSH_BYTES:
                return
            sink.write(self.buffer)
            self.buffer.clear()
        while len(rest) >= _FLUSH_BYTES:
            sink.write(rest[:_FLUSH_BYTES])
            rest = rest[_FLUSH_BYTES:]
        self.buffer += rest

    def flush(self) -> None:
        if self.buffer:
            (self._compressor or self._raw).write(self.buffer)
            self.buffer.clear()

    def close(self) -> None:
        """Finish the gzip member (if any), whatever state the lines are in; the sink stays open."""
        if self._compressor is not None:
            self._compressor.close()


class _OpenPart(_Lines):
    """A part being written to its own local file."""

    def __init__(self, path: Path, index: int, gzip_factory: GzipFactory | None) -> None:
        self.path = path
        self.index = index
        raw = path.open("wb")
        try:
            super().__init__(raw, gzip_factory)
        except BaseException:
            raw.close()
            raise
        self._file = raw

    def finish(self) -> PartFile:
        try:
            self.flush()
        finally:
            self.discard()
        return PartFile(self.index, self.path, self.events, self.path.stat().st_size)

    def discard(self) -> None:
        """Close everything (finishing the gzip member), whatever state the part is in."""
        try:
            self.close()
        finally:
            self._file.close()


class JsonLinesSink:
    """
    Write documents handed over one at a time into numbered JSON Lines parts in ``directory``.

    This is what :func:`write_parts` is built on; several sinks can be open at once (one per
    event type, say), each holding one part open and a buffer of at most about a megabyte. The
    first part is opened at once, so a sink finished without a document gives one empty part.
    Call :meth:`finish` after the last document, or :meth:`discard` to give up; either closes
    every file. The caller owns ``directory`` and removes it.

    :param directory: an existing directory the parts are written into, as
        ``part-00000<ext>``, ``part-00001<ext>``...
    :param compression: ``"gzip"`` or None.
    :param max_events_per_file: start a new part after this many documents; None for one file.
    :param gzip_factory: the compressor used when ``compression`` is ``"gzip"``.
    :param on_part: called with each part as soon as it is complete (before the next one is
        opened, and for the last one in :meth:`finish`), e.g. to upload it and free its disk.
    """

    def __init__(
        self,
        directory: Path,
        *,
        compression: str | None = "gzip",
        max_events_per_file: int | None = None,
        gzip_factory: GzipFactory = default_gzip,
        on_part: Callable[[PartFile], None] | None = None,
    ) -> None:
        self._directory = directory
        self._on_part = on_part
        self._extension = file_extension(compression)
        self._max_events = check_max_events_per_file(max_events_per_file)
        self._gzip_factory = gzip_factory if compression == "gzip" else None
        self._parts: list[PartFile] = []
        self._current: _OpenPart | None = self._open_part()

    def _open_part(self) -> _OpenPart:
        index = len(self._parts)
        return _OpenPart(self._directory / f"part-{index:05d}{self._extension}", index, self._gzip_factory)

    def _require_open(self) -> _OpenPart:
        if self._current is None:
            raise RuntimeError("this sink is finished or discarded")
        return self._current

    @property
    def buffered_bytes(self) -> int:
        """How many bytes wait in memory to be handed to the file (or its compressor)."""
        return 0 if self._current is None else len(self._current.buffer)

    def add(self, document: Mapping[str, Any] | bytes) -> None:
        """
        Append one document as one line.

        :param document: a mapping to serialise, or ``bytes``: one document serialised already
            (one line of JSON without its newline, as ``Cloud4WiHook.iter_event_lines`` yields).
        """
        current = self._require_open()
        # A part is opened only when an event needs it, so a stream of exactly k * N events
        # ends with part k - 1 rather than an extra empty part.
        if self._max_events is not None and current.events == self._max_events:
            self._current = None
            self._complete(current.finish())
            current = self._current = self._open_part()
        # No JSON document is a bytes object, so bytes can only be a serialised document.
        current.add(document if isinstance(document, bytes) else _dumps(document))

    def flush(self) -> None:
        """Hand the buffered lines to the file now (to free memory); the output stays valid."""
        if self._current is not None:
            self._current.flush()

    def finish(self) -> list[PartFile]:
        """Close the last part and return every part written, in order."""
        current = self._require_open()
        self._current = None
        self._complete(current.finish())
        return list(self._parts)

    def _complete(self, part: PartFile) -> None:
        self._parts.append(part)
        if self._on_part is not None:
            self._on_part(part)

    def discard(self) -> None:
        """Close whatever is open, leaving the files to be removed with the directory."""
        current, self._current = self._current, None
        if current is not None:
            current.discard()


@contextlib.contextmanager
def write_parts(
    documents: Iterable[Mapping[str, Any] | bytes],
    *,
    compression: str | None = "gzip",
    max_events_per_file: int | None = None,
    gzip_factory: GzipFactory = default_gzip,
    temp_dir: str | Path | None = None,
) -> Iterator[list[PartFile]]:
    """
    Write every document as one JSON line into local files and yield their descriptions.

    The whole stream is consumed before the ``with`` block is entered. There is always at least
    one part: an empty stream gives one empty file (with gzip, an empty gzip member that any gzip
    reader opens). The temporary directory holding the parts is removed when the block exits,
    and also when the stream or the serialisation fails.

    .. code-block:: python

        with write_parts(events, max_events_per_file=1_000_000) as parts:
            for part in parts:
                upload(part.path)

    :param documents: the JSON-serialisable documents, in output order; a ``bytes`` item is taken
        as one document already serialised (one line of JSON, without its newline).
    :param compression: ``"gzip"`` (default) or None for plain ``.jsonl`` files.
    :param max_events_per_file: start a new part after this many documents; None for one file.
    :param gzip_factory: the compressor used when ``compression`` is ``"gzip"``; see
        :func:`stdlib_gzip` for the contract. Default: :func:`default_gzip`.
    :param temp_dir: where to create the temporary directory; default: the system's temp dir.
    """
    check_compression(compression)
    check_max_events_per_file(max_events_per_file)
    directory = Path(tempfile.mkdtemp(prefix="cloud4wi-events-", dir=temp_dir))
    try:
        sink = JsonLinesSink(
            directory,
            compression=compression,
            max_events_per_file=max_events_per_file,
            gzip_factory=gzip_factory,
        )
        try:
            for document in documents:
                sink.add(document)
            parts = sink.finish()
        except BaseException:
            sink.discard()
            raise
        yield parts
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write_stream(
    documents: Iterable[Mapping[str, Any] | bytes],
    raw: BinarySink,
    *,
    compression: str | None = "gzip",
    gzip_factory: GzipFactory = default_gzip,
) -> int:
    """
    Write every document as one JSON line into ``raw``, compressed or not; return how many.

    Nothing touches the local disk: ``raw`` receives the bytes of one file as they are made (with
    gzip, one member, finished before this returns) and stays open. ``raw`` needs ``write`` and
    ``flush``; with the default compressor it is written from the compressor's thread.

    :param documents: as for :func:`write_parts`.
    :param raw: the writable binary sink, e.g. an upload in parts.
    :param compression: ``"gzip"`` (default) or None.
    :param gzip_factory: the compressor used when ``compression`` is ``"gzip"``.
    """

    def add_all(lines: _Lines) -> None:
        for document in documents:
            lines.add(document if isinstance(document, bytes) else _dumps(document))

    return _write_lines(add_all, raw, compression, gzip_factory)


def write_blocks(
    blocks: Iterable[bytes],
    raw: BinarySink,
    *,
    compression: str | None = "gzip",
    gzip_factory: GzipFactory = default_gzip,
) -> int:
    """
    :func:`write_stream` for lines already joined into blocks; return how many lines.

    :param blocks: JSON Lines text, every line ending with a line break (as
        ``Cloud4WiHook.iter_event_blocks`` yields it); each block is written as it is.
    Other parameters as for :func:`write_stream`.
    """

    def add_all(lines: _Lines) -> None:
        for block in blocks:
            lines.add_block(block)

    return _write_lines(add_all, raw, compression, gzip_factory)


def _write_lines(
    add_all: Callable[[_Lines], None], raw: BinarySink, compression: str | None, gzip_factory: GzipFactory
) -> int:
    check_compression(compression)
    # The compressors take a file object; they call only write and flush on it.
    lines = _Lines(cast(IO[bytes], raw), gzip_factory if compression == "gzip" else None)
    try:
        add_all(lines)
        lines.flush()
    finally:
        lines.close()
    return lines.events
