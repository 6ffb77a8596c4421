"""An HTTP proxy on 127.0.0.1 that corrupts request bodies on their way to a local storage server.

The verified-upload tests put it between an operator and moto or the GCS emulator: while it is
armed, it flips one byte of every request body that contains a marker, as a faulty network or
disk would, and forwards the request otherwise unchanged. It serves one request per connection
(it asks the upstream server to close), which every HTTP client the operators use copes with.

moto 5.2.5 stores the ``x-amz-checksum-*`` value a request carries without comparing it with the
body, unlike S3. With ``s3_checksums=True`` the proxy does what S3 documents instead: a request
whose body does not match its ``x-amz-checksum-sha256`` is answered ``400 BadDigest`` and never
reaches moto.

The GCS emulator checks the ``crc32c`` an object's metadata states, but not the ``x-goog-hash``
that google-cloud-storage sends with the last chunk of a resumable upload, when the object's
CRC32C is only known at its end. With ``gcs_final_hashes=True`` the proxy does what GCS does with
it: it keeps the bytes of each resumable session it forwards, and answers ``400`` to a chunk
whose ``x-goog-hash`` is not the CRC32C of the whole object, before the emulator finalizes it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import google_crc32c

_HEAD_END = b"\r\n\r\n"
_BAD_DIGEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
    b"<Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>"
)
_GCS_MISMATCH = b'{"error": {"code": 400, "message": "Provided CRC32C does not match the object."}}'


@dataclass
class ProxyState:
    """
    What the proxy does and saw.

    :param marker: the bytes whose first byte is flipped in a body, while armed.
    :param s3_checksums: refuse a body that does not match its ``x-amz-checksum-sha256``, as S3 does.
    :param gcs_final_hashes: refuse a resumable upload's last chunk whose ``x-goog-hash`` CRC32C
        is not the whole object's, as GCS does.
    """

    marker: bytes
    s3_checksums: bool = False
    gcs_final_hashes: bool = False
    sessions: dict[str, bytes] = field(default_factory=dict)
    armed: bool = False
    corrupted: int = 0
    refused: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request head (without the blank line) and whatever body bytes came with it."""
    data = b""
    while _HEAD_END not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client closed before the end of the request head")
        data += chunk
    head, _, rest = data.partition(_HEAD_END)
    return head, rest


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
    return request_line, headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def _read_exactly(conn: socket.socket, rest: bytes, length: int) -> bytes:
    body = rest
    while len(body) < length:
        chunk = conn.recv(min(1 << 20, length - len(body)))
        if not chunk:
            raise ConnectionError("client closed in the middle of the request body")
        body += chunk
    return body


def _flip_marker(body: bytes, marker: bytes) -> bytes | None:
    at = body.find(marker)
    if at < 0:
        return None
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def _sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def _crc32c_b64(body: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(body).digest()).decode("ascii")


def _gcs_final_hash_mismatch(
    state: ProxyState, path: str, headers: list[tuple[str, str]], body: bytes
) -> bool:
    """Record a resumable chunk; whether it states a CRC32C other than the whole object's."""
    session = parse_qs(urlsplit(path).query).get("upload_id")
    if not session:
        return False
    with state.lock:
        received = state.sessions.get(session[0], b"") + body
        state.sessions[session[0]] = received
    claimed = re.search(r"crc32c=([^,\s]+)", _header(headers, "x-goog-hash") or "")
    return claimed is not None and claimed.group(1) != _crc32c_b64(received)


def _refuse(conn: socket.socket, state: ProxyState, content_type: bytes, body: bytes) -> None:
    with state.lock:
        state.refused += 1
    conn.sendall(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: "
        + content_type
        + b"\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


class _Handler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        state = self.server.state
        head, rest = _read_head(conn)
        request_line, headers = _parse_head(head)
        if _header(headers, "Transfer-Encoding"):
            raise NotImplementedError("the corrupting proxy reads Content-Length bodies only")
        if (_header(headers, "Expect") or "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _read_exactly(conn, rest, int(_header(headers, "Content-Length") or 0))
        method, path, _ = request_line.split(" ", 2)
        with state.lock:
            state.requests.append((method, path, {key.lower(): value for key, value in headers}))
            flipped = _flip_marker(body, state.marker) if state.armed else None
            if flipped is not None:
                body, state.corrupted = flipped, state.corrupted + 1
        claimed = _header(headers, "x-amz-checksum-sha256")
        if state.s3_checksums and claimed is not None and claimed != _sha256_b64(body):
            _refuse(conn, state, b"application/xml", _BAD_DIGEST)
            return
        if state.gcs_final_hashes and _gcs_final_hash_mismatch(state, path, headers, body):
            _refuse(conn, state, b"application/json", _GCS_MISMATCH)
            return
        kept = [(key, value) for key, value in headers if key.lower() not in {"connection", "expect"}]
        forwarded = "\r\n".join(
            [request_line, *(f"{key}: {value}" for key, value in kept), "Connection: close"]
        )
        with socket.create_connection(self.server.upstream) as upstream:
            upstream.sendall(forwarded.encode("latin-1") + _HEAD_END + body)
            while chunk := upstream.recv(65536):
                conn.sendall(chunk)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], state: ProxyState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.state = state


@dataclass
class CorruptingProxy:
    """
    A running proxy.

    :param url: its base URL, to use instead of the upstream server's.
    :param state: switch corruption on and off, count what it did.
    """

    url: str
    state: ProxyState


@contextmanager
def corrupting_proxy(
    upstream_url: str, marker: bytes, *, s3_checksums: bool = False, gcs_final_hashes: bool = False
) -> Iterator[CorruptingProxy]:
    """
    Run a proxy to ``upstream_url`` (``http://127.0.0.1:<port>``) on a free port, until the block ends.

    :param upstream_url: the storage server's base URL.
    :param marker: the bytes whose first byte is flipped in a request body, while armed.
    :param s3_checksums: answer ``BadDigest`` to a body that does not match its SHA-256 header.
    :param gcs_final_hashes: answer ``400`` to a resumable upload's last chunk whose CRC32C is wrong.
    """
    parts = urlsplit(upstream_url)
    state = ProxyState(marker=marker, s3_checksums=s3_checksums, gcs_final_hashes=gcs_final_hashes)
    server = _ProxyServer((parts.hostname or "127.0.0.1", parts.port or 80), state)
    thread = threading.Thread(target=server.serve_forever, name="corrupting-proxy", daemon=True)
    thread.start()
    try:
        yield CorruptingProxy(url=f"http://127.0.0.1:{server.server_address[1]}", state=state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
