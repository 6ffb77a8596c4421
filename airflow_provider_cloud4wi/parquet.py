"""Write a stream of event documents to local Parquet files, in parts: typed columns plus ``raw``.

This module knows nothing of Airflow or object storage, and mirrors :mod:`airflow_provider_cloud4wi.writer`
so a transfer can pick either by its ``file_format``. It needs pyarrow (the ``parquet`` extra),
imported only when a function here is called.

Interface
---------
``write_parquet_parts(documents, *, compression="zstd", max_events_per_file=None,
row_group_events=10_000, temp_dir=None)`` is a context manager, like ``writer.write_parts``: it
consumes the whole iterable of documents (``bytes``, one compact JSON document each, as
``Cloud4WiHook.iter_event_lines()`` yields them; or mappings) before the ``with`` block is entered,
and yields a ``list[writer.PartFile]`` (``index``, ``path``, ``events``, ``size_bytes``) of files
``part-00000.parquet``, ``part-00001.parquet``... in a private temporary directory that is removed
when the block exits, on success and on failure. There is always at least one part: an empty
stream gives one valid Parquet file with the schema and no rows. With ``max_events_per_file=N`` a
new part starts after N events (never an empty trailing part). Also: :func:`check_parquet_available`
(call it when an operator is built, so a missing extra fails before any request),
:func:`check_parquet_compression`, :data:`FILE_EXTENSION` and :data:`MEDIA_TYPE`.

The file
--------
One row per event, in input order. The columns are the API's own members, typed from
:mod:`airflow_provider_cloud4wi.schemas.model` (:func:`arrow_schema`): ``customerId``,
``organizationId``, ``event`` (a struct of ``type``, ``id``, ``visit``, ``signup``, ``email``,
``sms``, ``survey``, ``promo``), ``where`` and ``when`` (``createdAt`` a UTC timestamp,
``createdAtLocal`` a wall-clock timestamp), then ``raw``: the document exactly as the API sent it.
A member the description does not know, or one whose value has another type than described, or a
document that is not a JSON object at all never fails the write: its typed column is null and the
value is in ``raw``.

Row groups of ``row_group_events`` events are written as the events arrive, so memory holds one
row group whatever the stream's size. The same events with the same arguments and the same pyarrow
version always give the same bytes (the files hold no time stamp; ``created_by`` names the pyarrow
version). :class:`ParquetSink` is the same writing, fed one document at a time, for a caller that
keeps several outputs open at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_cloud4wi.schemas.model import EVENT_FIELDS, Field, Kind
from airflow_provider_cloud4wi.writer import PartFile, check_max_events_per_file

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "FILE_EXTENSION",
    "MEDIA_TYPE",
    "PARQUET_COMPRESSIONS",
    "ROW_GROUP_EVENTS",
    "ParquetSink",
    "arrow_schema",
    "check_parquet_available",
    "check_parquet_compression",
    "events_table",
    "write_parquet_parts",
]

FILE_EXTENSION = ".parquet"
#: The media type IANA registered for Parquet.
MEDIA_TYPE = "application/vnd.apache.parquet"
#: The codecs ``compression`` accepts; None writes uncompressed pages.
PARQUET_COMPRESSIONS: tuple[str | None, ...] = ("zstd", "snappy", "gzip", None)
#: Events per row group: about one API page, a few MB in memory, large enough to compress well.
ROW_GROUP_EVENTS = 10_000

_MISSING_EXTRA = (
    'file_format="parquet" needs pyarrow: install the provider with the parquet extra, '
    'pip install "airflow-provider-cloud4wi[parquet]".'
)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_ISO_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH = dt.datetime(1970, 1, 1)


def _loads_stdlib(data: bytes) -> Any:
    return json.loads(data)


_loads: Callable[[bytes], Any]
_dumps: Callable[[Any], bytes]
try:  # orjson is several times faster; the writer works the same without it.
    import orjson

    _loads, _dumps = orjson.loads, orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment
    _loads = _loads_stdlib

    def _dumps(document: Any) -> bytes:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _pyarrow() -> tuple[Any, Any, Any]:
    """Import pyarrow, its JSON reader and its Parquet module, or fail naming the extra."""
    try:
        import pyarrow
        import pyarrow.json
        import pyarrow.parquet
    except ImportError as err:
        raise ImportError(_MISSING_EXTRA) from err
    return pyarrow, pyarrow.json, pyarrow.parquet


def check_parquet_available() -> None:
    """Raise :class:`ImportError` naming the ``parquet`` extra when pyarrow cannot be imported."""
    _pyarrow()


def check_parquet_compression(compression: str | None) -> str | None:
    """
    Return ``compression`` if it is one of :data:`PARQUET_COMPRESSIONS`, else raise :class:`ValueError`.

    :param compression: the Parquet codec: ``"zstd"``, ``"snappy"``, ``"gzip"`` or None.
    """
    if compression not in PARQUET_COMPRESSIONS:
        raise ValueError(
            f'compression for Parquet must be "zstd", "snappy", "gzip" or None, not {compression!r}.'
        )
    return compression


# ----------------------------------------------------------------------------------- the schema
def _arrow_type(field: Field) -> pa.DataType:
    pa = _pyarrow()[0]
    if field.kind is Kind.STRUCT:
        return pa.struct([_arrow_field(f) for f in _typed(field.fields)])
    simple = {
        Kind.STRING: pa.string(),
        Kind.INTEGER: pa.int64(),
        Kind.NUMBER: pa.float64(),
        Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
        Kind.LOCAL_TIMESTAMP: pa.timestamp("us"),
        Kind.NUMBER_LIST: pa.list_(pa.float64()),
    }
    return simple[field.kind]


def _arrow_field(field: Field) -> pa.Field:
    return _pyarrow()[0].field(field.name, _arrow_type(field))


def _typed(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    # A member of unknown shape has no column of its own: it is read from raw.
    return tuple(f for f in fields if f.kind is not Kind.JSON)


@functools.lru_cache(maxsize=1)
def _typed_schema() -> pa.Schema:
    return _pyarrow()[0].schema([_arrow_field(f) for f in _typed(EVENT_FIELDS)])


@functools.lru_cache(maxsize=1)
def arrow_schema() -> pa.Schema:
    """Return the Arrow schema of the files: the typed members, then ``raw`` (never null)."""
    pa = _pyarrow()[0]
    return _typed_schema().append(pa.field("raw", pa.string(), nullable=False))


# ----------------------------------------------------------------------------------- one batch
def events_table(lines: Sequence[bytes]) -> pa.Table:
    """
    Return the rows of a batch of event documents as a table of :func:`arrow_schema`.

    Arrow's JSON reader types the whole batch at once; a batch it refuses (a member of another
    type than described, a line that is not one JSON object) is typed event by event instead,
    where only the values that do not fit are null. Both give the same values for the same
    documents.

    :param lines: the documents, each one JSON text in UTF-8 without a newline.
    """
    pa = _pyarrow()[0]
    typed = _read_typed(lines)
    if typed is None:
        typed = _coerce_typed(lines)
    return pa.Table.from_arrays([*typed.columns, _raw_column(lines)], schema=arrow_schema())


def _read_typed(lines: Sequence[bytes]) -> pa.Table | None:
    """The typed columns by Arrow's JSON reader, or None when it refuses the batch."""
    pa, pa_json, _ = _pyarrow()
    payload = b"\n".join(lines)
    options = pa_json.ParseOptions(explicit_schema=_typed_schema(), unexpected_field_behavior="ignore")
    # A block must hold the longest document; more than about a megabyte only slows the reader.
    block_size = max(1 << 20, max(map(len, lines), default=0) + 2)
    read = pa_json.ReadOptions(use_threads=False, block_size=block_size)
    schema = _typed_schema()
    try:
        table = pa_json.read_json(io.BytesIO(payload), read_options=read, parse_options=options)
        table = table.select(schema.names)
        if not table.schema.equals(schema):
            table = table.cast(schema)
    except pa.ArrowException:
        return None
    # A line holding more than one document would shift every row after it.
    return table if table.num_rows == len(lines) else None


def _raw_column(lines: Sequence[bytes]) -> pa.Array:
    pa = _pyarrow()[0]
    try:
        return pa.array(lines, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        # Not UTF-8 (the API's JSON always is): keep what can be kept rather than fail the export.
        return pa.array([line.decode("utf-8", "replace") for line in lines], pa.string())


def _coerce_typed(lines: Sequence[bytes]) -> pa.Table:
    """The typed columns built event by event: a value that does not fit its field is null."""
    pa = _pyarrow()[0]
    rows = [_coerce_document(line) for line in lines]
    return pa.Table.from_pylist(rows, schema=_typed_schema())


def _coerce_document(line: bytes) -> dict[str, Any]:
    try:
        document = _loads(line)
    except (ValueError, RecursionError):
        return {}
    return _coerce_struct(_typed(EVENT_FIELDS), document) or {}


def _coerce_struct(fields: tuple[Field, ...], value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {f.name: _coerce(f, value.get(f.name)) for f in _typed(fields)}


def _coerce(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind is Kind.STRUCT:
        return _coerce_struct(field.fields, value)
    if kind is Kind.STRING:
        return value if isinstance(value, str) else None
    if kind is Kind.INTEGER:
        return value if _is_int64(value) else None
    if kind is Kind.NUMBER:
        return _as_float(value)
    if kind in (Kind.TIMESTAMP, Kind.LOCAL_TIMESTAMP):
        return _epoch_microseconds(value)
    if kind is Kind.NUMBER_LIST:
        if not isinstance(value, list):
            return None
        numbers = [None if item is None else _as_float(item) for item in value]
        return (
            None if any(n is None and v is not None for n, v in zip(numbers, value, strict=True)) else numbers
        )
    return None


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _epoch_microseconds(value: Any) -> int | None:
    """
    Microseconds since the epoch of an ISO 8601 text, read as Arrow's JSON reader reads it.

    A zone offset is applied (the result is UTC); a text without one is taken as it is. So the
    API's local times, which carry a ``Z`` although they are wall-clock times, keep their wall
    clock.
    """
    if not isinstance(value, str):
        return None
    match = _ISO_INSTANT.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if fraction is not None and len(fraction) > 6:
        return None  # finer than the column holds; Arrow refuses it too
    try:
        instant = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
    instant -= _zone_offset(zone)
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _zone_offset(zone: str | None) -> dt.timedelta:
    if zone is None or zone == "Z":
        return dt.timedelta(0)
    digits = zone[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return offset if zone[0] == "+" else -offset


# ----------------------------------------------------------------------------------- the files
class _OpenParquetPart:
    """A part being written: its Parquet writer and the events written so far."""

    def __init__(self, path: Path, index: int, compression: str | None) -> None:
        self.path = path
        self.index = index
        self.events = 0
        self._writer: pq.ParquetWriter = _pyarrow()[2].ParquetWriter(
            str(path),
            arrow_schema(),
            compression=compression or "none",
            # Pinned rather than left to the pyarrow version's defaults, so re-runs keep their bytes.
            version="2.6",
            data_page_version="1.0",
            use_dictionary=True,
            write_statistics=True,
        )

    def add(self, lines: Sequence[bytes]) -> None:
        if lines:
            self._writer.write_table(events_table(lines), row_group_size=len(lines))
            self.events += len(lines)

    def finish(self) -> PartFile:
        self._writer.close()
        return PartFile(self.index, self.path, self.events, self.path.stat().st_size)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def _as_line(document: Mapping[str, Any] | bytes) -> bytes:
    # bytes are a document serialised already (Cloud4WiHook.iter_event_lines).
    return document if isinstance(document, bytes) else _dumps(document)


class ParquetSink:
    """
    Write documents handed over one at a time into numbered Parquet parts in ``directory``.

    This is what :func:`write_parquet_parts` is built on; several sinks can be open at once (one
    per event type, say), each holding one part open and at most ``row_group_events`` pending
    documents. The first part is opened at once, so a sink finished without a document gives one
    valid file with the schema and no rows. Call :meth:`finish` after the last document, or
    :meth:`discard` to give up; either closes every file. The caller owns ``directory``.

    :param directory: an existing directory the parts are written into, as
        ``part-00000.parquet``, ``part-00001.parquet``...
    :param compression: the Parquet codec, one of :data:`PARQUET_COMPRESSIONS`.
    :param max_events_per_file: start a new part after this many documents; None for one file.
    :param row_group_events: events per row group (the unit held in memory).
    :param on_part: called with each part as soon as it is complete (before the next one is
        opened, and for the last one in :meth:`finish`), e.g. to upload it and free its disk.
    """

    def __init__(
        self,
        directory: Path,
        *,
        compression: str | None = "zstd",
        max_events_per_file: int | None = None,
        row_group_events: int = ROW_GROUP_EVENTS,
        on_part: Callable[[PartFile], None] | None = None,
    ) -> None:
        check_parquet_available()
        self._directory = directory
        self._on_part = on_part
        self._compression = check_parquet_compression(compression)
        self._max_events = check_max_events_per_file(max_events_per_file)
        self._row_group_events = _check_row_group_events(row_group_events)
        self._parts: list[PartFile] = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._current: _OpenParquetPart | None = self._open_part()

    def _open_part(self) -> _OpenParquetPart:
        index = len(self._parts)
        path = self._directory / f"part-{index:05d}{FILE_EXTENSION}"
        return _OpenParquetPart(path, index, self._compression)

    def _require_open(self) -> _OpenParquetPart:
        if self._current is None:
            raise RuntimeError("this sink is finished or discarded")
        return self._current

    @property
    def buffered_bytes(self) -> int:
        """How many bytes of documents wait in memory for their row group."""
        return self._pending_bytes

    def add(self, document: Mapping[str, Any] | bytes) -> None:
        """
        Append one document as one row.

        :param document: ``bytes``, one document serialised already (compact JSON, UTF-8, no
            newline), kept as is in ``raw``; or a mapping, serialised first.
        """
        current = self._require_open()
        # Opened only when an event needs it: k * N events end with part k - 1, no empty part.
        if self._max_events is not None and current.events + len(self._pending) == self._max_events:
            self.flush()
            self._current = None
            self._complete(current.finish())
            self._current = self._open_part()
        line = _as_line(document)
        self._pending.append(line)
        self._pending_bytes += len(line)
        if len(self._pending) == self._row_group_events:
            self.flush()

    def flush(self) -> None:
        """Write the pending documents now as one (smaller) row group, to free memory."""
        current = self._require_open()
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        current.add(pending)

    def finish(self) -> list[PartFile]:
        """Write what is pending, close the last part and return every part written, in order."""
        self.flush()
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
        self._pending, self._pending_bytes = [], 0
        if current is not None:
            current.discard()


def _check_row_group_events(row_group_events: int) -> int:
    if isinstance(row_group_events, bool) or not isinstance(row_group_events, int) or row_group_events < 1:
        raise ValueError(f"row_group_events must be a positive integer, not {row_group_events!r}.")
    return row_group_events


@contextlib.contextmanager
def write_parquet_parts(
    documents: Iterable[Mapping[str, Any] | bytes],
    *,
    compression: str | None = "zstd",
    max_events_per_file: int | None = None,
    row_group_events: int = ROW_GROUP_EVENTS,
    temp_dir: str | Path | None = None,
) -> Iterator[list[PartFile]]:
    """
    Write every document as one Parquet row into local files and yield their descriptions.

    The whole stream is consumed before the ``with`` block is entered; the temporary directory
    holding the parts is removed when the block exits, and also when the stream fails.

    .. code-block:: python

        with write_parquet_parts(hook.iter_event_lines(start, end)) as parts:
            for part in parts:
                upload(part.path)

    :param documents: the documents, in output order; a ``bytes`` item is one document already
        serialised (compact JSON, UTF-8, no newline), kept as is in ``raw``; a mapping is
        serialised first.
    :param compression: the Parquet codec, one of :data:`PARQUET_COMPRESSIONS`.
    :param max_events_per_file: start a new part after this many documents; None for one file.
    :param row_group_events: events per row group (the unit held in memory).
    :param temp_dir: where to create the temporary directory; default: the system's temp dir.
    """
    check_parquet_available()
    check_parquet_compression(compression)
    check_max_events_per_file(max_events_per_file)
    _check_row_group_events(row_group_events)
    directory = Path(tempfile.mkdtemp(prefix="cloud4wi-events-parquet-", dir=temp_dir))
    try:
        sink = ParquetSink(
            directory,
            compression=compression,
            max_events_per_file=max_events_per_file,
            row_group_events=row_group_events,
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
