"""The object names an export owns: the default Hive-style key, and the numbered parts beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_cloud4wi.windows import Window
from airflow_provider_cloud4wi.writer import file_extension

__all__ = ["ObjectNames", "default_key"]

_KEY_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# Longest first, so ``a.jsonl.gz`` splits as ``a`` + ``.jsonl.gz`` rather than ``a.jsonl`` + ``.gz``.
_KNOWN_EXTENSIONS = (".jsonl.gz", ".ndjson.gz", ".json.gz", ".jsonl", ".ndjson", ".json", ".gz")


def default_key(organization_id: str, window: Window, compression: str | None) -> str:
    """
    Return the Hive-style object name of a window's export, the same for every run of that window.

    For example ``cloud4wi/events/organization_id=<cid>/date=2024-01-01/
    events_20240101T020000Z_20240101T030000Z.jsonl.gz``; the date is the window start's, in UTC.

    :param organization_id: the organization (``cid``) whose events the object holds.
    :param window: the window exported.
    :param compression: ``"gzip"`` or None; decides the extension.
    """
    start, end = window.start, window.end
    return (
        f"cloud4wi/events/organization_id={organization_id}/date={start.strftime('%Y-%m-%d')}/"
        f"events_{start.strftime(_KEY_TIME_FORMAT)}_{end.strftime(_KEY_TIME_FORMAT)}"
        f"{file_extension(compression)}"
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
