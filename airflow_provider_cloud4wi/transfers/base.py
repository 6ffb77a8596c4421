"""The transfer operator every Cloud4Wi-events-to-object-storage operator shares.

A run pulls one window of events through :class:`Cloud4WiHook` into local JSON Lines files
(:mod:`airflow_provider_cloud4wi.writer`), and only then uploads them to deterministic names and
removes the objects of an earlier run of the same window that the new run did not rewrite.
Subclasses say how to upload, list and delete with their storage's official hook; nothing else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from abc import abstractmethod
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_cloud4wi._compat import AirflowException, BaseOperator, Context
from airflow_provider_cloud4wi.api.client import DEFAULT_MAX_CONCURRENCY
from airflow_provider_cloud4wi.api.protocol import check_concurrency, check_page_size, normalize_event_types
from airflow_provider_cloud4wi.api.pull import PullStats
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiHook
from airflow_provider_cloud4wi.prefetch import prefetched
from airflow_provider_cloud4wi.transfers.assets import asset_event_extra, record_asset_events
from airflow_provider_cloud4wi.transfers.keys import ObjectNames, default_key
from airflow_provider_cloud4wi.transfers.lineage import (
    EventsSource,
    ExportTarget,
    WrittenStatistics,
    export_lineage,
)
from airflow_provider_cloud4wi.windows import Window, run_window
from airflow_provider_cloud4wi.writer import (
    PartFile,
    check_compression,
    check_max_events_per_file,
    write_parts,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["Cloud4WiEventsTransferBaseOperator", "Cloud4WiStorageError", "ObjectNames", "default_key"]

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class Cloud4WiStorageError(AirflowException):
    """Object storage refused an operation; the message names the operation, the object and why."""


def _current_context() -> Mapping[str, Any]:
    """The running task's context, or an empty one where Airflow does not provide it."""
    from airflow.providers.common.compat.sdk import get_current_context

    try:
        return get_current_context()
    except Exception:  # Airflow 2.11 sets the context only around execute()
        return {}


class Cloud4WiEventsTransferBaseOperator(BaseOperator):
    """
    Export the Cloud4Wi events of one window to object storage as JSON Lines, one event per line.

    A run lists what an earlier run of the same key left (which also checks the bucket before
    the pull), pulls the whole window into local temporary files, and only then uploads them,
    each replacing the object of the same name. Once every file is uploaded, the earlier run's
    objects this run did not rewrite (extra parts, or the unsplit key) are deleted, so re-running
    a window always leaves exactly one copy of each of its events. Objects of other keys, even
    ones sharing the key's prefix, are never touched.

    On failure: an API error leaves the bucket untouched; a failed upload removes the objects this
    run had newly created and leaves the earlier run's objects in place (those already replaced
    hold this run's version of the same parts). The local files are removed in every case.

    The result, pushed to XCom, is ``{"objects": [uri, ...], "event_count": n, "bytes": b,
    "window_start": iso, "window_end": iso}``.

    The default key names the organization and the window only: give tasks that export the same
    window with different ``event_types`` or ``customer_id`` keys of their own.

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
        time slices in parallel; the object holds exactly the bytes of a sequential pull (1).
    :param compression: ``"gzip"`` (default) or None.
    :param max_events_per_file: split the export into parts of at most this many events, named
        ``<stem>.part-00000<ext>``, ``<stem>.part-00001<ext>``...; None (default) for one object.
    :param write_empty: write one empty object for a window without events (default); when
        False such a window writes nothing (and removes what an earlier run of it wrote).
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
        compression: str | None = "gzip",
        max_events_per_file: int | None = None,
        write_empty: bool = True,
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
        self.compression = check_compression(compression)
        self.max_events_per_file = check_max_events_per_file(max_events_per_file)
        self.write_empty = write_empty
        self.hook_params = dict(hook_params or {})
        self.partition_grain = partition_grain
        # What the last run read and wrote, for OpenLineage's completion event.
        self._lineage: tuple[EventsSource, ExportTarget, WrittenStatistics] | None = None

    # ----------------------------------------------------------------------------- storage
    @abstractmethod
    def upload_file(self, path: Path, bucket: str, key: str) -> None:
        """
        Upload a local file to ``key``, replacing any object there; nothing may appear at ``key``
        unless the upload completes.

        :param path: the local file.
        :param bucket: the bucket name.
        :param key: the object name.
        """

    @abstractmethod
    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """
        Return the names of the objects whose name starts with ``prefix``.

        :param bucket: the bucket name.
        :param prefix: the name prefix.
        """

    @abstractmethod
    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        """
        Delete these objects; an object already gone is not an error.

        :param bucket: the bucket name.
        :param keys: the object names.
        """

    def uri(self, bucket: str, key: str) -> str:
        """The URI of an object, as logged and returned."""
        return f"{self.uri_scheme}://{bucket}/{key}"

    @contextlib.contextmanager
    def _storage_errors(self, action: str, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as err:
            raise Cloud4WiStorageError(f"Could not {action} {what}: {err}") from err

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
        else:
            return key
        raise ValueError(f"{self.key_field} must be {example}, not {key!r}: {problem}.")

    # ----------------------------------------------------------------------------- the run
    def execute(self, context: Context) -> dict[str, Any]:
        """Pull the window, upload it, clean up after earlier runs; return the result summary."""
        started = time.monotonic()
        window = self._window(context)
        bucket = self._bucket()
        given_key = self._given_key()
        hook = Cloud4WiHook(self.cloud4wi_conn_id, **self.hook_params)
        try:
            source = self._events_source(hook, window)
            names = self._object_names(source, given_key)
            keys, event_count, size = self._export(hook, window, bucket, names, started)
        finally:
            hook.close()
        target = self._export_target(bucket, names)
        self._lineage = (source, target, WrittenStatistics(rows=event_count, bytes=size, files=len(keys)))
        objects = [self.uri(bucket, key) for key in keys]
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
        key = given_key or default_key(source.organization_id, source.window, self.compression)
        return ObjectNames.from_key(key)

    def _export_target(self, bucket: str, names: ObjectNames) -> ExportTarget:
        """The location an export owns: its key, or the prefix its parts share when it is split."""
        name = names.stem if self.max_events_per_file is not None else names.key
        return ExportTarget(scheme=self.uri_scheme, bucket=bucket, name=name)

    def _record_asset_events(
        self, context: Context | Mapping[str, Any], result: dict[str, Any], organization_id: str, uri: str
    ) -> None:
        if not self.outlets:
            return
        extra = asset_event_extra(result, organization_id, context.get("partition_key"))
        record_asset_events(self.outlets, context["outlet_events"], extra, uri)

    def _export(
        self, hook: Cloud4WiHook, window: Window, bucket: str, names: ObjectNames, started: float
    ) -> tuple[list[str], int, int]:
        """Do the run's storage and API work; return the keys written, the events and the bytes."""
        # Listing first also fails fast on a missing bucket or missing rights, before the pull.
        previous = self._list_owned(bucket, names)
        self.log.info("Exporting Cloud4Wi events of %s to %s.", window, self.uri(bucket, names.key))
        events, stats = self._events(hook, window)
        # Closed at once when the writer fails, so the pull stops instead of running on.
        with (
            contextlib.closing(events),
            write_parts(
                events,
                compression=self.compression,
                max_events_per_file=self.max_events_per_file,
            ) as parts,
        ):
            event_count = sum(part.events for part in parts)
            self._log_pull(stats, window, parts, started)
            if event_count == 0 and not self.write_empty:
                self.log.info("No events in %s and write_empty is False: writing no object.", window)
                parts = []
            keys = names.for_parts(len(parts), split=self.max_events_per_file is not None)
            self._upload_all(bucket, parts, keys, previous)
            size = sum(part.size_bytes for part in parts)
        written = set(keys)
        self._delete_stale(bucket, [name for name in previous if name not in written])
        return keys, event_count, size

    def _events(self, hook: Cloud4WiHook, window: Window) -> tuple[Generator[bytes, None, None], PullStats]:
        # Lines rather than dicts: each event's JSON goes to the file without being rebuilt and
        # re-serialised. The pull runs a page ahead of the writer, in a thread of its own; if the
        # writer gives up, closing the session stops the pull from keeping its connections.
        pull = hook.iter_event_lines(
            window.start,
            window.end,
            event_types=self.event_types or None,
            customer_id=self.customer_id or None,
            organization_id=self.organization_id or None,
            page_size=self.page_size,
            max_concurrency=self.max_concurrency,
        )
        return prefetched(pull, batch=self.page_size, on_abandon=hook.session.close), pull.stats

    def _log_pull(self, pull: PullStats, window: Window, parts: list[PartFile], started: float) -> None:
        elapsed = time.monotonic() - started
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

    def _list_owned(self, bucket: str, names: ObjectNames) -> list[str]:
        try:
            found = self.list_keys(bucket, names.stem)
        except Exception as err:
            raise Cloud4WiStorageError(
                f"Could not list {self.uri(bucket, names.stem + '*')}: {err}. Check that bucket '{bucket}' "
                "exists and that the storage connection may list, write and delete objects in it."
            ) from err
        return sorted(name for name in found if names.owns(name))

    def _upload_all(self, bucket: str, parts: list[PartFile], keys: list[str], previous: list[str]) -> None:
        uploaded: list[str] = []
        try:
            for part, key in zip(parts, keys, strict=True):
                uri = self.uri(bucket, key)
                with self._storage_errors("upload", f"{part.path.name} ({part.events} events) to {uri}"):
                    self.upload_file(part.path, bucket, key)
                uploaded.append(key)
                self.log.info("Uploaded %s: %d events, %d bytes.", uri, part.events, part.size_bytes)
        except BaseException:
            self._roll_back(bucket, [key for key in uploaded if key not in previous])
            raise

    def _roll_back(self, bucket: str, created: list[str]) -> None:
        """Remove the objects this failed run created, so no half-written export sits beside an old one."""
        if not created:
            return
        self.log.warning("Upload failed; removing the %d object(s) this run created.", len(created))
        try:
            self.delete_keys(bucket, created)
        except Exception as err:
            self.log.error(
                "Could not remove %s after the failed upload (%s); the next successful run replaces or "
                "removes them.",
                ", ".join(self.uri(bucket, key) for key in created),
                err,
            )

    def _delete_stale(self, bucket: str, stale: list[str]) -> None:
        if not stale:
            return
        uris = ", ".join(self.uri(bucket, key) for key in stale)
        self.log.info("Deleting %d object(s) an earlier run of this window left: %s", len(stale), uris)
        with self._storage_errors("delete the stale object(s)", uris):
            self.delete_keys(bucket, stale)

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
