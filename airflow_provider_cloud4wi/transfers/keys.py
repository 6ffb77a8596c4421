"""The object names an export owns: the default Hive-style key, its manifest, and the per-run names.

An export of one object lives at its key. An export of several objects (split into parts, or one
object per event type) names them after the run that wrote them, so the objects of two runs never
share a name: a reader following the manifest sees one run's objects, whatever another run does.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from airflow_provider_cloud4wi.windows import Window

__all__ = ["ExportLayout", "ObjectNames", "default_key", "new_run_token", "run_identity"]

_KEY_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# Longest first, so ``a.jsonl.gz`` splits as ``a`` + ``.jsonl.gz`` rather than ``a.jsonl`` + ``.gz``.
_KNOWN_EXTENSIONS = (
    ".jsonl.gz",
    ".ndjson.gz",
    ".json.gz",
    ".jsonl",
    ".ndjson",
    ".json",
    ".parquet",
    ".gz",
)
MANIFEST_SUFFIX = ".manifest.json"
#: ``<identity>-<random>``: 8 hex digits naming the task and window, 6 naming the run.
_RUN_TOKEN = r"[0-9a-f]{8}-[0-9a-f]{6}"
_IDENTITY_DIGITS = 8


def default_key(organization_id: str, window: Window, extension: str) -> str:
    """
    Return the Hive-style object name of a window's export, the same for every run of that window.

    For example ``cloud4wi/events/organization_id=<cid>/date=2024-01-01/
    events_20240101T020000Z_20240101T030000Z.jsonl.gz``; the date is the window start's, in UTC.

    :param organization_id: the organization (``cid``) whose events the object holds.
    :param window: the window exported.
    :param extension: the file name extension, e.g. ``.jsonl.gz`` or ``.parquet``.
    """
    start, end = window.start, window.end
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start.strftime('%Y-%m-%d')}/"
        f"events_{start.strftime(_KEY_TIME_FORMAT)}_{end.strftime(_KEY_TIME_FORMAT)}"
        f"{extension}"
    )


@dataclass(frozen=True)
class ObjectNames:
    """
    The object names one export owns: its key, or numbered parts beside it.

    ``a/b.jsonl.gz`` split into parts gives ``a/b.part-00000.jsonl.gz``, ``a/b.part-00001.jsonl.gz``...

    :param stem: the key without its extension.
    :param extension: the key's extension (``.jsonl.gz``, ``.jsonl``, ... or empty).
    """

    stem: str
    extension: str

    @classmethod
    def from_key(cls, key: str) -> ObjectNames:
        """Split ``key`` into stem and extension."""
        for extension in _KNOWN_EXTENSIONS:
            if key.endswith(extension) and len(key) > len(extension):
                return cls(key[: -len(extension)], extension)
        return cls(key, "")

    @property
    def key(self) -> str:
        """The name of an export that is not split into parts."""
        return self.stem + self.extension

    @property
    def manifest_key(self) -> str:
        """The name of the export's manifest: ``<stem>.manifest.json``."""
        return self.stem + MANIFEST_SUFFIX

    def part(self, index: int) -> str:
        """The name of part ``index`` (from 0)."""
        return f"{self.stem}.part-{index:05d}{self.extension}"

    def for_parts(self, count: int, *, split: bool) -> list[str]:
        """The names of ``count`` files: the key itself when there is one file and no split."""
        if not split and count == 1:
            return [self.key]
        return [self.part(index) for index in range(count)]

    def owns(self, name: str) -> bool:
        """Tell whether ``name`` is the key or one of its parts (never a sibling with a longer stem)."""
        pattern = re.escape(self.stem) + r"(\.part-\d{5,})?" + re.escape(self.extension)
        return re.fullmatch(pattern, name) is not None


def run_identity(*fields: object) -> str:
    """
    The identity part of a run token: the same for every try of one task on one window.

    :param fields: what names the task and the window (DAG id, task id, map index, key, window).
    """
    text = "\n".join(str(field) for field in fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_IDENTITY_DIGITS]


def new_run_token(identity: str) -> str:
    """
    A token for one run: its task-and-window ``identity`` and 6 random hex digits.

    :param identity: from :func:`run_identity`.
    """
    return f"{identity}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class OwnedName:
    """
    An object name an export owns, as parsed by :meth:`ExportLayout.parse`.

    :param key: the object name.
    :param run: the run token in the name, or None for a name without one (the unsplit key,
        or a part written by a provider version without manifests).
    """

    key: str
    run: str | None


@dataclass(frozen=True)
class ExportLayout:
    """
    The names of one run's objects.

    ``a/b.jsonl.gz`` split gives ``a/b.<run>.part-00000.jsonl.gz``...; by event type,
    ``a/event_type=visit/b.<run>.jsonl.gz``; both, ``a/event_type=visit/b.<run>.part-00000.jsonl.gz``.
    Without a run token (no manifest), parts are ``a/b.part-00000.jsonl.gz`` as before manifests.

    :param names: the export's key, split into stem and extension.
    :param run: this run's token; None writes names without one.
    :param split: whether the export is split into parts (``max_events_per_file``).
    :param partitioned: whether it writes one object (or set of parts) per event type.
    """

    names: ObjectNames
    run: str | None
    split: bool
    partitioned: bool

    @property
    def multi_object(self) -> bool:
        """Whether the export may write more than one object."""
        return self.split or self.partitioned

    @property
    def _directory(self) -> str:
        directory, _, _ = self.names.stem.rpartition("/")
        return directory + "/" if directory else ""

    @property
    def _base(self) -> str:
        return self.names.stem.rpartition("/")[2]

    def keys_for(self, event_type: str | None, count: int) -> list[str]:
        """
        The names of the ``count`` files of one group.

        :param event_type: the group's event type (partitioned exports), else None.
        :param count: how many parts the group has.
        """
        stem = self.names.stem
        if event_type is not None:
            stem = f"{self._directory}event_type={event_type}/{self._base}"
        if self.run is not None and self.multi_object:
            stem = f"{stem}.{self.run}"
        if not self.split and count == 1:
            return [stem + self.names.extension]
        return [f"{stem}.part-{index:05d}{self.names.extension}" for index in range(count)]

    def part_key(self, event_type: str | None, index: int) -> str:
        """
        The name of part ``index`` of a split export's group, known before the group's last part.

        :param event_type: the group's event type (partitioned exports), else None.
        :param index: the part's position in its group, from 0.
        """
        if not self.split:
            raise ValueError("only a split export names its parts before it knows how many there are")
        return self.keys_for(event_type, index + 1)[index]

    def listing_prefixes(self) -> list[str]:
        """The prefixes to list to find every object this export may own."""
        prefixes = [self.names.stem]
        if self.partitioned:
            prefixes.append(self._directory + "event_type=")
        return prefixes

    def parse(self, key: str) -> OwnedName | None:
        """
        Tell whether ``key`` is one of this export's names (of any run); None when it is not.

        :param key: an object name found under one of :meth:`listing_prefixes`.
        """
        tail = rf"(?:\.(?P<run>{_RUN_TOKEN}))?(?:\.part-\d{{5,}})?{re.escape(self.names.extension)}"
        patterns = [re.escape(self.names.stem) + tail]
        if self.partitioned:
            patterns.append(re.escape(self._directory) + r"event_type=[^/]+/" + re.escape(self._base) + tail)
        for pattern in patterns:
            match = re.fullmatch(pattern, key)
            if match is not None:
                return OwnedName(key, match.group("run"))
        return None
