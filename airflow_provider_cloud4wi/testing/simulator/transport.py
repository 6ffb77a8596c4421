"""The HTTP layer: a threading HTTP/1.1 server and the handler that routes requests to the simulator."""

from __future__ import annotations

import contextlib
import socket
import threading
import traceback
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

from airflow_provider_cloud4wi.testing.simulator.primitives import _dumps
from airflow_provider_cloud4wi.testing.simulator.protocol import _METHODS, _ApiError, _route
from airflow_provider_cloud4wi.testing.simulator.state import _Stats


class _Application(Protocol):
    """What the HTTP layer needs of the simulator (a protocol, so that this module need not import it)."""

    _stats: _Stats

    def _handle(
        self, handler: _Handler, endpoint: str, method: str, params: dict[str, str], query: str, body: bytes
    ) -> None: ...


class _Server(ThreadingHTTPServer):
    """A threading HTTP server (a thread per connection) that can drop its open connections.

    :param address: ``(host, port)`` to bind.
    :param simulator: handles the routed requests.
    :param verbose: log every request to stderr.
    """

    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: _Application, *, verbose: bool = False) -> None:
        self.simulator = simulator
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def drop_connections(self) -> None:
        """Shut down idle keep-alive connections so their threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the simulator."""

    protocol_version = "HTTP/1.1"
    server_version = "Cloud4WiSimulator/1.0"
    timeout = 300
    server: _Server
    fault_injected = False

    # -- plumbing -------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add 40 ms
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        raw_path, _, query = self.path.partition("?")
        path = "/" + raw_path.lstrip("/")
        simulator = self.server.simulator
        endpoint, match = _route(path)
        simulator._stats.request(endpoint)
        if match is None:
            self.send_json(404, {"status": "ERROR", "message": f"no route for {method} {path}"})
            return
        params = {name: unquote(value) for name, value in match.groupdict().items()}
        try:
            expected = _METHODS.get(endpoint)
            if expected is not None and method != expected:
                raise _ApiError(405, f"method {method} not allowed on {path}")
            simulator._handle(self, endpoint, method, params, query, body)
        except _ApiError as error:
            self.send_json(error.status, {"status": "ERROR", "message": error.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulator: say so loudly, keep serving
            self.log_error("simulator failure on %s: %r", self.path, exc)
            traceback.print_exc()
            self.send_json(500, {"status": "ERROR", "message": f"simulator failure: {exc!r}"})

    # -- replies ----------------------------------------------------------------------------------

    def send_bytes(
        self,
        status: int,
        chunks: Sequence[bytes],
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        """Send a reply made of ``chunks``; with ``truncate`` only half of it, then close."""
        length = sum(len(chunk) for chunk in chunks)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            data = b"".join(chunks)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        for chunk in chunks:
            if chunk:
                self.wfile.write(chunk)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send a JSON reply."""
        self.send_bytes(status, [_dumps(payload)], headers=headers)

    def drop(self, reset: bool) -> None:
        """Close the connection without a reply (an RST with ``reset``, else an orderly close)."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
