"""The transfer operator every Cloud4Wi-events-to-object-storage operator shares.

A run pulls one window of events through :class:`Cloud4WiHook` into local files
(:mod:`airflow_provider_cloud4wi.export_files`) and uploads them, each checked by the store (or,
where the store takes it, streams one JSON Lines object up in parts while the pull runs,
:mod:`airflow_provider_cloud4wi.transfers.streaming`), writes the export's manifest last as its
commit point, and only after that removes what earlier runs of the same window left
(:mod:`airflow_provider_cloud4wi.transfers.sweep`).
Subclasses say how to upload, list, read, delete and abort with their storage's official hook.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
import tempfile
import time
from abc import abstractmethod
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_cloud4wi import __version__
from airflow_provider_cloud4wi._compat import BaseOperator, Context
from airflow_provider_cloud4wi.api.client import DEFAULT_MAX_CONCURRENCY
from airflow_provider_cloud4wi.api.protocol import check_concurrency, check_page_size, normalize_event_types
from airflow_provider_cloud4wi.api.pull import PullStats
from airflow_provider_cloud4wi.export_files import (
    FileGroup,
    check_file_format,
    check_partition_by,
    file_extension,
    media_type,
    resolve_compression,
    write_export_files,
)
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
from airflow_provider_cloud4wi.memory import releasing_memory
from airflow_provider_cloud4wi.parquet import check_parquet_available
from airflow_provider_cloud4wi.prefetch import prefetched
from airflow_provider_cloud4wi.tempfiles import local_disk_error, sweep_stale_temp_dirs
from airflow_provider_cloud4wi.transfers.assets import asset_event_extra, record_asset_events
from airflow_provider_cloud4wi.transfers.bucket import Cloud4WiStorageError, ExportBucket, PlannedObject
from airflow_provider_cloud4wi.transfers.checksums import Checksum, StoredObject, file_checksum
from airflow_provider_cloud4wi.transfers.keys import (
    ExportLayout,
    ObjectNames,
    default_key,
    new_run_token,
    run_identity,
)
from airflow_provider_cloud4wi.transfers.lineage import (
    EventsSource,
    ExportTarget,
    WrittenStatistics,
    export_lineage,
)
from airflow_provider_cloud4wi.transfers.manifest import Manifest, ManifestObject
from airflow_provider_cloud4wi.transfers.streaming import PartUpload
from airflow_provider_cloud4wi.transfers.sweep import stale_keys
from airflow_provider_cloud4wi.windows import Window, run_window
from airflow_provider_cloud4wi.writer import BinarySink, PartFile, check_max_events_per_file, write_blocks

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["Cloud4WiEventsTransferBaseOperator", "Cloud4WiStorageError", "ObjectNames", "default_key"]

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
#: Local temporary directories of this provider untouched for this long belong to a killed run.
_LOCAL_LEFTOVERS_AFTER = dt.timedelta(hours=6)


def _current_context() -> Mapping[str, Any]:
    """The running task's context, or an empty one where Airflow does not provide it."""
    from airflow.providers.common.compat.sdk import get_current_context

    try:
        return get_current_context()
    except Exception:  # Airflow 2.11 sets the context only around execute()
        return {}


class Cloud4WiEventsTransferBaseOperator(BaseOperator):
    """
    Export the Cloud4Wi events of one window to object storage as JSON Lines or Parquet.

    A run lists what earlier runs of the same key left (which also checks the bucket before the
    pull), pulls the window into local temporary files and uploads them, each verified by the
    store against the checksum computed locally; one JSON Lines object (not split, not
    partitioned) on a store that takes parts (S3) goes up in verified parts while the pull runs,
    with no local file. Nothing appears at a key before its upload is complete. The manifest,
    ``<stem>.manifest.json``, is written last: it names every object of the run with its events,
    bytes and checksum, so a reader that follows it never sees a mixed set. An export of one
    object lives at its key; an export of several (``max_events_per_file``, ``partition_by``)
    names them after the run, so two runs never write the same name. Only once the manifest is in
    place are the objects of earlier runs deleted (:mod:`~airflow_provider_cloud4wi.transfers.sweep`
    says which), so re-running a window leaves exactly one copy of each of its events. Objects of
    other keys, even ones sharing the key's prefix, are never touched.

    On failure: an API error or a full local disk leaves the bucket untouched; a failed upload
    removes the objects this run had newly created and leaves the earlier run's manifest and
    objects in place. The local files are removed in every case, and a run also removes this
    provider's local directories a killed run left more than 6 hours ago, and aborts the S3
    multipart uploads a killed run of this task left open under the export's names.

    The result, pushed to XCom, is ``{"objects": [uri, ...], "manifest": uri, "event_count": n,
    "bytes": b, "window_start": iso, "window_end": iso}``; read the manifest back with
    :func:`~airflow_provider_cloud4wi.transfers.manifest.read_manifest`.

    The default key names the organization and the window only: give tasks that export the same
    window with different ``event_types``, ``customer_id`` or ``file_format`` keys of their own.

    This class is abstract: use a storage-specific subclass.

    :param cloud4wi_conn_id: the Cloud4Wi connection.
    :param organization_id: the organization (``cid``) to export; default: the connection's
        ``organization_id``. (templated)
    :param event_types: export only these event types (a list or a comma-separated string);
        default: all. (templated)
    :param customer_id: export only the events of this contact. (templated)
    :param window_start: first instant exported, an aware datetime or ISO 8601 text.
        (templated; default ``{{ data_interval_start }}``)
    :param window_end: first instant not exported. (templated; default ``{{ data_interval_end }}``)
    :param page_size: events per API request, 1 to 10000.
    :param max_concurrency: API requests at once, 1 to 32 (default 4): the window is pulled as
        time slices in parallel; the objects hold exactly the bytes of a sequential pull (1).
    :param file_format: ``"jsonl"`` (default: JSON Lines, one event document per line) or
        ``"parquet"`` (typed columns plus ``raw``; needs the ``parquet`` extra).
    :param compression: ``"auto"`` (default: gzip for JSON Lines, zstd for Parquet), ``"gzip"``,
        None; for Parquet also ``"snappy"`` or ``"zstd"``.
    :param partition_by: None (default) or ``"event_type"``: one object (or set of parts) per
        event type present, at ``<dir>/event_type=<type>/<name>.<run><ext>``.
    :param max_events_per_file: split each object into parts of at most this many events,
        ``<stem>.<run>.part-00000<ext>``...; None (default) for one object.
    :param write_empty: write one empty object for a window without events (default); when
        False such a window writes nothing (and removes what an earlier run of it wrote).
    :param manifest: write ``<stem>.manifest.json`` as the export's commit point (default). With
        False, parts are named ``<stem>.part-00000<ext>``... as before manifests existed, and a
        failed or concurrent split export can leave a mixed set.
    :param local_temp_dir: where the local files are written; default: the system's temporary
        directory (``TMPDIR``). It needs room for the window's compressed output (a part of it
        with ``max_events_per_file``; nothing for one JSON Lines object on S3 or GCS, which streams).
    :param hook_params: keyword arguments for :class:`Cloud4WiHook`, e.g. ``{"max_attempts": 4}``.
    :param partition_grain: on a partitioned run (``CronPartitionTimetable``, Airflow 3.2+) whose
        data interval is zero-width, the window is ``[partition_date, partition_date + grain)``;
        default None: up to the next tick of the DAG's cron timetable.

    Outlets: an ``Asset`` (2.11: ``Dataset``) outlet's event gets the result as its ``extra``
    (with ``organization_id``, and ``partition_key`` on a partitioned run); an ``AssetAlias``
    (2.11: ``DatasetAlias``) outlet gets the asset ``<scheme>://<bucket>/<key>`` of this run, with
    the same extra. OpenLineage (when its provider is installed) sees the API's events as the input
    and the objects' location as the output, with rows, bytes and files written.
    """

    template_fields: Sequence[str] = (
        "window_start",
        "window_end",
        "organization_id",
        "event_types",
        "customer_id",
    )

    #: The attribute holding the bucket name, named as the subclass's parameter.
    bucket_field: ClassVar[str]
    #: The attribute holding the object name (None for the default key).
    key_field: ClassVar[str]
    #: The scheme of the object URIs in logs and results, e.g. ``s3``.
    uri_scheme: ClassVar[str]
    #: The checksum the store verifies on upload (see :mod:`~airflow_provider_cloud4wi.transfers.checksums`).
    checksum_algorithm: ClassVar[str]
    #: Whether the store takes one object in parts while it is written (:meth:`open_part_upload`).
    streams_uploads: ClassVar[bool] = False

    def __init__(
        self,
        *,
        cloud4wi_conn_id: str = Cloud4WiHook.default_conn_name,
        organization_id: str | None = None,
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        window_start: Any = "{{ data_interval_start }}",
        window_end: Any = "{{ data_interval_end }}",
        page_size: int = 10_000,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        file_format: str = "jsonl",
        compression: str | None = "auto",
        partition_by: str | None = None,
        max_events_per_file: int | None = None,
        write_empty: bool = True,
        manifest: bool = True,
        local_temp_dir: str | None = None,
        hook_params: dict[str, Any] | None = None,
        partition_grain: dt.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_page_size(page_size)
        check_concurrency(max_concurrency)
        self.max_concurrency = max_concurrency
        self.cloud4wi_conn_id = cloud4wi_conn_id
        self.organization_id = organization_id
        self.event_types = event_types
        self.customer_id = customer_id
        self.window_start = window_start
        self.window_end = window_end
        self.page_size = page_size
        self.file_format = check_file_format(file_format)
        if self.file_format == "parquet":
            check_parquet_available()
        self.compression = resolve_compression(self.file_format, compression)
        self.partition_by = check_partition_by(partition_by)
        self.max_events_per_file = check_max_events_per_file(max_events_per_file)
        self.write_empty = write_empty
        self.manifest = manifest
        self.local_temp_dir = local_temp_dir
        self.hook_params = dict(hook_params or {})
        self.partition_grain = partition_grain
        # What the last run read and wrote, for OpenLineage's completion event.
        self._lineage: tuple[EventsSource, ExportTarget, WrittenStatistics] | None = None

    # ----------------------------------------------------------------------------- storage
    @abstractmethod
    def upload_file(self, path: Path, bucket: str, key: str, checksum: Checksum, media_type: str) -> None:
        """
        Upload a local file to ``key``, replacing any object there; nothing may appear at ``key``
        unless the upload completes, and the store refuses a body whose checksum is not ``checksum``.

        :param path: the local file.
        :param bucket: the bucket name.
        :param key: the object name.
        :param checksum: the file's checksum, of :attr:`checksum_algorithm`.
        :param media_type: the object's Content-Type.
        """

    @abstractmethod
    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """
        Return the objects whose name starts with ``prefix``, with their last-modified times.

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        """

    @abstractmethod
    def read_object(self, bucket: str, key: str) -> bytes | None:
        """
        Return a (small) object's bytes, or None when there is no such object.

        :param bucket: the bucket name.
        :param key: the object name.
        """

    @abstractmethod
    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """
        Delete these objects; an object already gone is not an error.

        :param bucket: the bucket name.
        :param keys: the object names.
        """

    def abort_open_uploads(
        self, bucket: str, prefix: str, should_abort: Callable[[str, dt.datetime], bool]
    ) -> list[str]:
        """
        Abort the unfinished uploads under ``prefix`` that ``should_abort(key, initiated)`` picks;
        return their keys. Stores without visible unfinished uploads keep this default (none).

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        :param should_abort: decides for each open upload, from its key and start time.
        """
        return []

    def open_part_upload(self, bucket: str, key: str, media_type: str) -> PartUpload | None:
        """
        Start an upload of ``key`` in parts, for an object uploaded while the pull runs; None
        (this default) when the store takes whole files only. Stores that return an upload set
        :attr:`streams_uploads`.

        :param bucket: the bucket name.
        :param key: the object name.
        :param media_type: the object's Content-Type.
        """
        return None

    def uri(self, bucket: str, key: str) -> str:
        """The URI of an object, as logged and returned."""
        return f"{self.uri_scheme}://{bucket}/{key}"

    # ----------------------------------------------------------------------------- rendered values
    def _window(self, context: Context | Mapping[str, Any]) -> Window:
        return run_window(self.window_start, self.window_end, context, self.partition_grain).require_width()

    def _bucket(self) -> str:
        bucket = getattr(self, self.bucket_field)
        if not isinstance(bucket, str) or not bucket.strip() or "/" in bucket:
            raise ValueError(
                f"{self.bucket_field} must be a bucket name such as 'my-bucket' (no scheme, no path), "
                f"not {bucket!r}."
            )
        return bucket.strip()

    def _given_key(self) -> str | None:
        """The object name the user gave, checked; None when the default key is to be used."""
        key = getattr(self, self.key_field)
        if key is None:
            return None
        example = "an object name such as 'exports/events.jsonl.gz'"
        # A template that renders to nothing is a mistake in it, not a request for the default key.
        if not isinstance(key, str) or not key.strip():
            raise ValueError(
                f"{self.key_field} rendered to {key!r}: give {example}, or leave {self.key_field} unset "
                "(None) for the default key."
            )
        if _CONTROL_CHARACTERS.search(key):
            problem = "it contains a control character (newline, tab, ...); remove it"
        elif key.startswith("/") or key.endswith("/"):
            problem = "remove the leading or trailing '/'"
        elif any(segment in (".", "..") for segment in key.split("/")):
            problem = "it has a '.' or '..' path segment; spell the path without them"
        elif key.endswith(".manifest.json"):
            problem = "that is the name of an export's manifest; name the data object instead"
        else:
            return key
        raise ValueError(f"{self.key_field} must be {example}, not {key!r}: {problem}.")

    # ----------------------------------------------------------------------------- the run
    def execute(self, context: Context) -> dict[str, Any]:
        """Pull the window, upload it, commit its manifest, clean up after earlier runs; return a summary."""
        started = time.monotonic()
        window = self._window(context)
        bucket = self._bucket()
        given_key = self._given_key()
        hook = Cloud4WiHook(self.cloud4wi_conn_id, **self.hook_params)
        try:
            source = self._events_source(hook, window)
            names = self._object_names(source, given_key)
            identity = self._run_identity(context, bucket, names, window)
            layout = self._layout(names, identity)
            store = ExportBucket(self, bucket, self.log, self.local_temp_dir)
            written, manifest = self._export(hook, source, store, layout, identity, started)
        finally:
            hook.close()
        event_count = sum(item.events for item in written)
        size = sum(item.bytes for item in written)
        target = self._export_target(bucket, names)
        self._lineage = (source, target, WrittenStatistics(rows=event_count, bytes=size, files=len(written)))
        objects = [item.uri for item in written]
        elapsed = time.monotonic() - started
        self.log.info(
            "Exported %d events (%d bytes) of %s to %d object(s) in %.1fs (%.0f events/s): %s",
            event_count,
            size,
            window,
            len(objects),
            elapsed,
            event_count / max(elapsed, 1e-9),
            ", ".join(objects) or "none",
        )
        result = {
            "objects": objects,
            "manifest": manifest,
            "event_count": event_count,
            "bytes": size,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
        }
        self._record_asset_events(context, result, source.organization_id, target.uri)
        return result

    def _events_source(self, hook: Cloud4WiHook, window: Window) -> EventsSource:
        """What this run reads; checks the organization id (no request is sent)."""
        return EventsSource(
            api_url=hook.settings.base_url,
            organization_id=hook.resolve_organization_id(self.organization_id),
            window=window,
            event_types=normalize_event_types(self.event_types or None),
            customer_id=self.customer_id or None,
        )

    def _object_names(self, source: EventsSource, given_key: str | None) -> ObjectNames:
        extension = file_extension(self.file_format, self.compression)
        return ObjectNames.from_key(
            given_key or default_key(source.organization_id, source.window, extension)
        )

    def _run_identity(
        self, context: Context | Mapping[str, Any], bucket: str, names: ObjectNames, window: Window
    ) -> str | None:
        """The token part shared by every try of this task on this window; None outside a task run."""
        ti = context.get("ti")
        if ti is None:
            return None
        return run_identity(ti.dag_id, ti.task_id, getattr(ti, "map_index", -1), bucket, names.key, window)

    def _layout(self, names: ObjectNames, identity: str | None) -> ExportLayout:
        run = new_run_token(identity or secrets.token_hex(4)) if self.manifest else None
        return ExportLayout(
            names,
            run,
            split=self.max_events_per_file is not None,
            partitioned=self.partition_by is not None,
        )

    def _export_target(self, bucket: str, names: ObjectNames) -> ExportTarget:
        """The location an export owns: its key, the prefix of its parts, or its directory by type."""
        if self.partition_by is not None:
            name = names.stem.rpartition("/")[0] or names.stem
        elif self.max_events_per_file is not None:
            name = names.stem
        else:
            name = names.key
        return ExportTarget(scheme=self.uri_scheme, bucket=bucket, name=name)

    def _record_asset_events(
        self, context: Context | Mapping[str, Any], result: dict[str, Any], organization_id: str, uri: str
    ) -> None:
        if not self.outlets:
            return
        extra = asset_event_extra(result, organization_id, context.get("partition_key"))
        record_asset_events(self.outlets, context["outlet_events"], extra, uri)

    def _export(
        self,
        hook: Cloud4WiHook,
        source: EventsSource,
        bucket: ExportBucket,
        layout: ExportLayout,
        identity: str | None,
        started: float,
    ) -> tuple[list[ManifestObject], str | None]:
        """Do the run's storage and API work; return the objects written and the manifest's URI."""
        run_started = dt.datetime.now(dt.timezone.utc)
        self._sweep_local_leftovers()
        # Listing first also fails fast on a missing bucket or missing rights, before the pull.
        found = bucket.list_owned(layout)
        self._check_same_format(bucket, layout)
        bucket.abort_leftover_uploads(layout, identity, run_started)
        self.log.info("Exporting Cloud4Wi events of %s to %s.", source.window, bucket.uri(layout.names.key))
        streams = self._streams(layout)
        events, stats = self._events(hook, source.window, blocks=streams)
        existing = {item.key for item in found}
        object_type = media_type(self.file_format, self.compression)
        if streams:
            written = self._stream_export(events, stats, bucket, layout, object_type, source.window, started)
            return self._finish_export(source, bucket, layout, found, identity, written)
        # A split export with a manifest uploads each part as soon as it is complete, while the
        # pull goes on: its names are the run's own and the manifest comes last, so nothing
        # becomes visible early, and the local disk holds a part per event type, not the window.
        streamed: list[ManifestObject] | None = [] if layout.run is not None and layout.split else None
        on_part = None if streamed is None else self._uploader(bucket, layout, streamed, object_type)
        try:
            with (
                contextlib.closing(events),
                self._local_files(releasing_memory(events, every=self.page_size), on_part) as groups,
            ):
                self._log_pull(stats, source.window, groups, started)
                if streamed is None:
                    planned = self._plan(layout, groups)
                    written = bucket.upload_all(planned, existing, object_type) if planned else []
                else:
                    written = sorted(streamed, key=lambda item: item.key)
        except BaseException:
            bucket.roll_back([item.key for item in streamed or []])
            raise
        return self._finish_export(source, bucket, layout, found, identity, written)

    def _finish_export(
        self,
        source: EventsSource,
        bucket: ExportBucket,
        layout: ExportLayout,
        found: list[StoredObject],
        identity: str | None,
        written: list[ManifestObject],
    ) -> tuple[list[ManifestObject], str | None]:
        """Commit the manifest of what was written, then delete what earlier runs left."""
        existing = {item.key for item in found}
        if not written and not self.write_empty:
            self.log.info("No events in %s and write_empty is False: writing no object.", source.window)
            self._remove_export(bucket, layout, found)
            return [], None
        replaced = None
        if layout.run is not None:
            created = [item.key for item in written if item.key not in existing]
            replaced = bucket.commit(
                layout.names.manifest_key, self._manifest(source, layout.run, written), created
            )
        keys = {item.key for item in written} | {layout.names.manifest_key}
        now = dt.datetime.now(dt.timezone.utc)
        stale = stale_keys(found, layout=layout, written=keys, replaced=replaced, identity=identity, now=now)
        bucket.delete(stale, "an earlier run of this window left")
        manifest_uri = bucket.uri(layout.names.manifest_key) if layout.run is not None else None
        return written, manifest_uri

    def _streams(self, layout: ExportLayout) -> bool:
        """Whether this export is one JSON Lines object the store takes while it is written."""
        return (
            self.streams_uploads
            and self.file_format == "jsonl"
            and not layout.split
            and not layout.partitioned
        )

    def _stream_export(
        self,
        events: Generator[bytes, None, None],
        stats: PullStats,
        bucket: ExportBucket,
        layout: ExportLayout,
        object_type: str,
        window: Window,
        started: float,
    ) -> list[ManifestObject]:
        """Upload the one object in parts as the pull produces it: no local file, a few parts in memory."""
        key = layout.keys_for(None, 1)[0]

        def write(sink: BinarySink) -> int:
            with contextlib.closing(events):
                count = write_blocks(releasing_memory(events), sink, compression=self.compression)
            elapsed = time.monotonic() - started
            self.log.info(
                "Pulled %d events of %s in %d page(s), uploading as they came, in %.1fs (%.0f events/s).",
                count,
                window,
                stats.pages,
                elapsed,
                count / max(elapsed, 1e-9),
            )
            return count

        try:
            item = bucket.stream_one(key, object_type, write, self.write_empty)
        finally:
            events.close()  # also when the upload could not even start
        return [] if item is None else [item]

    def _check_same_format(self, bucket: ExportBucket, layout: ExportLayout) -> None:
        """Refuse, before the pull, to replace an export of the same window in the other format."""
        key = layout.names.manifest_key
        previous = bucket.read_manifest(key)
        if previous is None or previous.file_format == self.file_format:
            return
        raise ValueError(
            f"{bucket.uri(key)} is the manifest of this window's export as {previous.file_format}, and "
            f"this task writes {self.file_format} to the same place: give it a key of its own "
            f"({self.key_field}=...) or another bucket. To replace that export on purpose, delete its "
            "manifest first."
        )

    def _manifest(self, source: EventsSource, run: str, written: list[ManifestObject]) -> Manifest:
        return Manifest(
            run=run,
            provider_version=__version__,
            organization_id=source.organization_id,
            window_start=source.window.start.isoformat(),
            window_end=source.window.end.isoformat(),
            event_types=list(source.event_types) if source.event_types else None,
            customer_id=source.customer_id,
            file_format=self.file_format,
            compression=self.compression,
            partition_by=self.partition_by,
            event_count=sum(item.events for item in written),
            bytes=sum(item.bytes for item in written),
            objects=written,
        )

    def _remove_export(self, bucket: ExportBucket, layout: ExportLayout, found: list[StoredObject]) -> None:
        """A window with nothing to write: remove the manifest first, then every object it or a try left."""
        key = layout.names.manifest_key
        replaced = bucket.read_manifest(key)
        if replaced is not None:
            bucket.delete([key], "(the manifest of an earlier run of this window)")
        every_name = ExportLayout(layout.names, None, split=layout.split, partitioned=layout.partitioned)
        now = dt.datetime.now(dt.timezone.utc)
        stale = stale_keys(found, layout=every_name, written=(), replaced=replaced, identity=None, now=now)
        bucket.delete(stale, "an earlier run of this window left")

    def _events(
        self, hook: Cloud4WiHook, window: Window, *, blocks: bool
    ) -> tuple[Generator[bytes, None, None], PullStats]:
        """
        The window's events as lines, or as blocks of lines (a page's worth each) with ``blocks``.

        Lines rather than dicts: each event's JSON goes to the file without being rebuilt and
        re-serialised. The pull runs ahead of the writer, in a thread of its own; if the writer
        gives up, closing the session stops the pull from keeping its connections.
        """
        pull = (hook.iter_event_blocks if blocks else hook.iter_event_lines)(
            window.start,
            window.end,
            event_types=self.event_types or None,
            customer_id=self.customer_id or None,
            organization_id=self.organization_id or None,
            page_size=self.page_size,
            max_concurrency=self.max_concurrency,
        )
        batch = 1 if blocks else self.page_size
        return prefetched(pull, batch=batch, on_abandon=hook.session.close), pull.stats

    @property
    def _temp_root(self) -> Path:
        return Path(self.local_temp_dir) if self.local_temp_dir else Path(tempfile.gettempdir())

    @contextlib.contextmanager
    def _local_files(
        self, events: Iterator[bytes], on_part: Callable[[str | None, PartFile], None] | None
    ) -> Iterator[list[FileGroup]]:
        """Write the events to local files; a full disk fails with the directory and what to change."""
        try:
            with write_export_files(
                events,
                file_format=self.file_format,
                compression=self.compression,
                max_events_per_file=self.max_events_per_file,
                partition_by=self.partition_by,
                temp_dir=self.local_temp_dir,
                on_part=on_part,
            ) as groups:
                yield groups
        except OSError as err:
            disk_error = local_disk_error(err, self._temp_root)
            if disk_error is None:
                raise
            raise disk_error from err

    def _sweep_local_leftovers(self) -> None:
        for path in sweep_stale_temp_dirs(self._temp_root, _LOCAL_LEFTOVERS_AFTER):
            self.log.warning("Removed %s, local files an earlier, killed run left.", path)

    def _uploader(
        self, bucket: ExportBucket, layout: ExportLayout, uploaded: list[ManifestObject], object_type: str
    ) -> Callable[[str | None, PartFile], None]:
        """What uploads each completed part of a split export and frees its local disk at once."""

        def upload(event_type: str | None, part: PartFile) -> None:
            if part.events or self.write_empty:
                checksum = file_checksum(part.path, self.checksum_algorithm)
                item = PlannedObject(layout.part_key(event_type, part.index), event_type, part, checksum)
                uploaded.append(bucket.upload_one(item, object_type))
            part.path.unlink()

        return upload

    def _plan(self, layout: ExportLayout, groups: list[FileGroup]) -> list[PlannedObject]:
        """Name each local file's object and compute the checksum the store will verify."""
        planned: list[PlannedObject] = []
        for group in groups:
            if not self.write_empty and group.events == 0:
                continue
            keys = layout.keys_for(group.event_type, len(group.parts))
            for part, key in zip(group.parts, keys, strict=True):
                checksum = file_checksum(part.path, self.checksum_algorithm)
                planned.append(PlannedObject(key, group.event_type, part, checksum))
        return planned

    def _log_pull(self, pull: PullStats, window: Window, groups: list[FileGroup], started: float) -> None:
        elapsed = time.monotonic() - started
        parts = [part for group in groups for part in group.parts]
        events = sum(part.events for part in parts)
        self.log.info(
            "Pulled %d events of %s in %d page(s) into %d local file(s), %d bytes, in %.1fs (%.0f events/s).",
            events,
            window,
            pull.pages,
            len(parts),
            sum(part.size_bytes for part in parts),
            elapsed,
            events / max(elapsed, 1e-9),
        )

    # ----------------------------------------------------------------------------- OpenLineage
    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """The lineage known before the pull: the API's events in, the export's location out."""
        window = self._window(_current_context())
        hook = Cloud4WiHook(self.cloud4wi_conn_id, **self.hook_params)
        source = self._events_source(hook, window)
        target = self._export_target(self._bucket(), self._object_names(source, self._given_key()))
        return export_lineage(source, target)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        The lineage of the finished run, with what it wrote; overrides the storage hooks' lineage.

        :param task_instance: the task instance (unused: the run's own record is kept on the operator).
        """
        if self._lineage is None:
            return self.get_openlineage_facets_on_start()
        return export_lineage(*self._lineage)
