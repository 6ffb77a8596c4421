"""Checksums of local files in the form object stores verify them, and the objects a listing returns.

No Airflow here. The value of a :class:`Checksum` is the base64 text of the digest, the form S3's
``x-amz-checksum-*`` headers and GCS's ``md5Hash`` / ``crc32c`` metadata both use.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHECKSUM_ALGORITHMS", "Checksum", "StoredObject", "file_checksum", "new_hasher"]

#: The algorithms :func:`file_checksum` computes.
CHECKSUM_ALGORITHMS = ("SHA256", "MD5", "CRC32C")

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Checksum:
    """
    One checksum of an object's bytes.

    :param algorithm: one of :data:`CHECKSUM_ALGORITHMS`.
    :param value: the digest, base64-encoded.
    """

    algorithm: str
    value: str


@dataclass(frozen=True)
class StoredObject:
    """
    An object as a listing returns it.

    :param key: the object name.
    :param updated: when it was last written, an aware UTC datetime.
    """

    key: str
    updated: dt.datetime


class _Crc32c:
    """The ``hashlib``-like face of google-crc32c (a dependency of google-cloud-storage)."""

    def __init__(self) -> None:
        try:
            import google_crc32c
        except ImportError as err:
            raise RuntimeError(
                "CRC32C checksums need the google-crc32c package, which the Google provider "
                "installs: pip install 'airflow-provider-cloud4wi[google]'."
            ) from err
        self._checksum: Any = google_crc32c.Checksum()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        # The C extension takes bytes only (no bytearray, no view).
        self._checksum.update(data if isinstance(data, bytes) else bytes(data))

    def digest(self) -> bytes:
        return bytes(self._checksum.digest())


def new_hasher(algorithm: str) -> Any:
    """
    A ``hashlib``-like object (``update``, ``digest``) computing ``algorithm``.

    :param algorithm: one of :data:`CHECKSUM_ALGORITHMS`.
    """
    if algorithm == "SHA256":
        return hashlib.sha256()
    if algorithm == "MD5":
        # Not for security: MD5 is what GCS verifies an upload against.
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "CRC32C":
        return _Crc32c()
    choices = ", ".join(CHECKSUM_ALGORITHMS)
    raise ValueError(f"Unknown checksum algorithm {algorithm!r}: use one of {choices}.")


def file_checksum(path: Path, algorithm: str) -> Checksum:
    """
    Return the checksum of a file, read in chunks (memory stays at one chunk whatever its size).

    :param path: the file.
    :param algorithm: one of :data:`CHECKSUM_ALGORITHMS`.
    """
    hasher = new_hasher(algorithm)
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            hasher.update(chunk)
    return Checksum(algorithm, base64.b64encode(hasher.digest()).decode("ascii"))
