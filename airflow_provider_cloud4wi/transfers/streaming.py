"""An object uploaded in parts while it is being written: no local file, a few parts in memory.

:class:`PartStream` is the writable sink the export's lines are compressed into. It gathers the
bytes into parts of at least the store's part size, hashes the whole object as it goes (with the
checksum the store verifies), and hands each part to one uploader thread, at most one part
waiting: the pull, the compression and the upload overlap, and memory holds about three parts
whatever the window holds. An object smaller than one part is stored whole in one request, as a
file would be. This module knows nothing of a particular store: :class:`PartUpload` is what a
store provides.
"""

from __future__ import annotations

import base64
import queue
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_cloud4wi.transfers.checksums import Checksum, new_hasher

__all__ = ["PartStream", "PartUpload", "PartUploadError", "StreamedObject"]


class PartUploadError(Exception):
    """Sending a part failed; the store's own error is the cause."""


class PartUpload(Protocol):
    """One object's upload in parts, as a store runs it; nothing is visible before :meth:`complete`."""

    #: The smallest part the store accepts (all but the last).
    part_bytes: int
    #: The checksum the store verifies, one of :data:`~.checksums.CHECKSUM_ALGORITHMS`.
    checksum_algorithm: str

    def send(self, number: int, data: bytes) -> None:
        """Upload part ``number`` (from 1), which the store checks against its own checksum."""
        ...

    def complete(self) -> None:
        """Make the object of every part sent visible at its key."""
        ...

    def put_whole(self, data: bytes, checksum: str) -> None:
        """Store ``data``, which no part was sent for, as the whole object in one request checked
        against ``checksum`` (base64, of :attr:`checksum_algorithm`)."""
        ...

    def abort(self) -> None:
        """Give the upload up; the parts sent are discarded and the key is left as it was."""
        ...


@dataclass(frozen=True)
class StreamedObject:
    """
    What a :class:`PartStream` wrote.

    :param size_bytes: the object's size.
    :param checksum: its checksum, of the algorithm the store verifies.
    :param parts: how many parts it was sent in.
    """

    size_bytes: int
    checksum: Checksum
    parts: int


_DONE = None
_PARTS_PER_SIZE = 1_000


class PartStream:
    """
    A writable binary sink whose bytes go to ``upload`` in parts of ``upload.part_bytes`` or more
    (twice that after 1,000 parts, four times after 2,000, ...).

    Call :meth:`finish` after the last write (it sends the last part and waits for every upload),
    then :meth:`complete` to make the object visible, or :meth:`discard` to give up. A failed
    upload raises :class:`PartUploadError` at the next :meth:`write` or in :meth:`finish`. An
    object that never filled a part is sent by :meth:`complete`, whole, in one request.

    :param upload: the store's upload of the object.
    """

    def __init__(self, upload: PartUpload) -> None:
        self._upload = upload
        self._buffer = bytearray()
        self._hash: Any = new_hasher(upload.checksum_algorithm)
        self._size = 0
        self._sent = 0
        self._whole: bytes | None = None
        self._error: BaseException | None = None
        self._parts: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._send_parts, name="cloud4wi-upload", daemon=True)
        self._thread.start()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Add bytes to the object; a full part goes to the uploader (waiting while one is queued)."""
        self._raise_error()
        self._buffer += data
        self._hash.update(data)
        self._size += len(data)
        if len(self._buffer) >= self._part_bytes():
            self._hand_on()
        return len(data)

    def _part_bytes(self) -> int:
        # Parts double in size every 1,000 (S3 takes at most 10,000), so any object fits.
        return int(self._upload.part_bytes * 2 ** (self._sent // _PARTS_PER_SIZE))

    def flush(self) -> None:
        """Nothing to do: parts go on as they fill (the compressor calls this)."""

    def finish(self) -> StreamedObject:
        """Send the last part and wait for every upload; an object under one part is kept whole."""
        if self._sent == 0:
            # Three requests (start, part, complete) for what one request stores would make small
            # windows the slowest per event.
            self._whole, self._buffer = bytes(self._buffer), bytearray()
        elif self._buffer:
            self._hand_on()
        self._stop()
        self._raise_error()
        return StreamedObject(self._size, self._checksum(), self._parts_made())

    def complete(self) -> None:
        """Make the finished object visible: its parts completed, or the object stored whole."""
        if self._whole is not None:
            self._upload.put_whole(self._whole, self._checksum().value)
        else:
            self._upload.complete()

    def _checksum(self) -> Checksum:
        value = base64.b64encode(self._hash.digest()).decode("ascii")
        return Checksum(self._upload.checksum_algorithm, value)

    def _parts_made(self) -> int:
        return 1 if self._whole is not None else self._sent

    def discard(self) -> None:
        """Stop the uploader without sending what is left; the caller aborts the upload."""
        self._error = self._error or _Discarded()
        self._stop()

    def _hand_on(self) -> None:
        self._sent += 1
        part, self._buffer = bytes(self._buffer), bytearray()
        while True:
            self._raise_error()
            try:
                self._parts.put((self._sent, part), timeout=0.5)
                return
            except queue.Full:
                continue

    def _send_parts(self) -> None:
        while (item := self._parts.get()) is not _DONE:
            if self._error is None:
                try:
                    self._upload.send(*item)
                except BaseException as error:  # raised by the writer at its next step
                    self._error = error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._parts.put(_DONE)
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None and not isinstance(self._error, _Discarded):
            raise PartUploadError(f"part {self._sent} of the object: {self._error}") from self._error


class _Discarded(Exception):
    """The stream was given up: the uploader sends nothing more."""
