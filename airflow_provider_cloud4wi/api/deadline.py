"""One deadline for a whole request: connect, headers and body, however slowly a server sends them.

requests' timeouts bound each socket read, not the request, so a server dripping a byte at a time
can hold a task forever. The adapter here lets a watchdog find the connection a request runs on
and shut its socket when the deadline passes; the blocked read then fails at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_requesting = threading.local()


class _Watched:
    """Where a watchdog finds the connection of the request it guards."""

    def __init__(self) -> None:
        self.connection: HTTPConnection | None = None
        self.expired = False
        self.lock = threading.Lock()

    def cut(self) -> None:
        """Shut the connection's socket: a read blocked on it returns at once."""
        with self.lock:
            self.expired = True
            sock = getattr(self.connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _TrackedConnection:
    def request(self, *args: Any, **kwargs: Any) -> None:
        watched = getattr(_requesting, "watched", None)
        if watched is not None:
            with watched.lock:
                watched.connection = self  # type: ignore[assignment]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_TrackedConnection, HTTPConnection):
    pass


class _HTTPSConnection(_TrackedConnection, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTP adapter whose connections can be cut by :func:`deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[_Watched]:
    """
    Cut the connection of the request this thread sends inside the block after ``seconds``.

    Yields an object whose ``expired`` tells afterwards whether the deadline cut it.
    """
    watched = _Watched()
    _requesting.watched = watched
    timer = threading.Timer(seconds, watched.cut)
    timer.daemon = True
    timer.start()
    try:
        yield watched
    finally:
        timer.cancel()
        with watched.lock:  # a cut in progress finishes before the connection goes back to the pool
            _requesting.watched = None
