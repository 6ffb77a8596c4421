"""Small hostile Events API servers on loopback, and a pull run in a subprocess to measure its memory.

A :class:`HostileServer` answers the login and the logout like the real API (a JWT-shaped token),
and hands every other request to a function of the test, which may reply as badly as it likes:
drip bytes, lie about the length, inflate, never end. Every server stops on :meth:`HostileServer.stop`
(its handlers check :attr:`HostileServer.stopping` and give up on a write that blocks for long).
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import inspect
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.protocol import LOGIN_PATH, LOGOUT_PATH
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import ClientSettings

ORG = "org-hostile"
CLIENT_KEY = "hostile-key"
CLIENT_SECRET = "the-hostile-client-secret-0123456789"
WINDOW = ("2024-01-02T00:00:00Z", "2024-01-02T01:00:00Z")
MIB = 1024 * 1024


def _jwt() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = json.dumps({"sub": CLIENT_KEY, "exp": int(time.time()) + 3600}).encode()
    payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"{header}.{payload}.hostile-signature-9f8e7d6c5b4a"


#: The token every hostile server issues on login.
TOKEN = _jwt()


@dataclass
class Request:
    """One request a hostile server received, and the means to answer it."""

    method: str
    path: str
    params: dict[str, str]
    handler: http.server.BaseHTTPRequestHandler
    server: HostileServer
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    #: Bytes of body written so far (what the socket took, not what the client read).
    sent: int = 0

    @property
    def is_continuation(self) -> bool:
        """Whether the request continues a scroll."""
        return "scrollId" in self.params

    def head(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Send the status line and the headers, nothing of the body."""
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()

    def write(self, data: bytes) -> bool:
        """Send part of the body; False once the client has gone or the server is stopping."""
        if self.server.stopping:
            return False
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
            self.sent += len(data)
        except OSError:  # the client hung up (BrokenPipe, ConnectionReset) or the write timed out
            return False
        return True

    def send_bytes(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """A whole reply with its true length."""
        self.head(status, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def send_json(self, document: Any, status: int = 200) -> None:
        """A whole JSON reply."""
        self.send_bytes(json.dumps(document).encode(), status, {"Content-Type": "application/json"})

    def drip(self, data: bytes, every: float) -> None:
        """Send ``data`` one byte at a time, ``every`` seconds apart, until done or hung up on."""
        for i in range(len(data)):
            if not self.write(data[i : i + 1]) or self.server.stop_event.wait(every):
                return


Answer = Callable[[Request], None]


class HostileServer:
    """
    A loopback HTTP/1.0 server: logins succeed, every other request goes to ``answer``.

    :param answer: writes the reply of a data request (status, headers, body, as it pleases).
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10  # a write the client never drains fails instead of blocking a thread for good

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                url = urlsplit(self.path)
                request = Request(self.command, url.path, dict(parse_qsl(url.query)), self, server)
                with server.lock:
                    server.requests.append(request)
                try:
                    if request.method == "POST" and request.path == LOGIN_PATH:
                        request.send_json({"token": TOKEN})
                    elif request.method == "POST" and request.path == LOGOUT_PATH:
                        request.send_json({})
                    else:
                        server.answer(request)
                except OSError:
                    pass
                finally:
                    request.ended = time.monotonic()

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def stopping(self) -> bool:
        """Whether the server is being stopped (handlers give up)."""
        return self.stop_event.is_set()

    def data_requests(self) -> list[Request]:
        """The requests other than login and logout."""
        with self.lock:
            return [r for r in self.requests if r.path not in (LOGIN_PATH, LOGOUT_PATH)]

    def logins(self) -> int:
        """How many logins were received."""
        with self.lock:
            return sum(1 for r in self.requests if r.path == LOGIN_PATH)

    def stop(self) -> None:
        """Stop serving and release the port; handlers still running give up at their next write."""
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------------------ clients
#: Where the client can pull a window in parallel time slices, most tests pull it in one sequence:
#: their servers count the requests of one pull. The parallel path is checked on outcomes only.
SEQUENTIAL: dict[str, Any] = (
    {"max_concurrency": 1}
    if "max_concurrency" in inspect.signature(EventsClient.iter_events).parameters
    else {}
)
FAST = RetryPolicy(max_attempts=2, wait_initial=0, wait_max=0, retry_after_cap=0)


def settings_for(
    server_url: str, *, timeout: float = 10.0, max_reply_bytes: int | None = None
) -> ClientSettings:
    """Settings of a client talking to a hostile server, optionally with a smaller reply cap."""
    settings = ClientSettings.from_parts(
        source="the hostile test settings",
        host=server_url,
        client_key=CLIENT_KEY,
        client_secret=CLIENT_SECRET,
        organization_id=ORG,
        timeout=timeout,
    )
    if max_reply_bytes is not None:
        settings = dataclasses.replace(settings, max_reply_bytes=max_reply_bytes)
    return settings


def client_for(server_url: str, **setting_overrides: Any) -> EventsClient:
    """A client of a hostile server, with two attempts per request and no waits."""
    return EventsClient(settings_for(server_url, **setting_overrides), retry=FAST)


def event(number: int, created_at: str, kind: str = "visit") -> dict[str, Any]:
    """An event document."""
    return {
        "event": {"type": kind, "id": f"e{number}"},
        "when": {"createdAt": created_at},
        "customerId": "c1",
    }


# ------------------------------------------------------------------------------------------ bodies
def gzip_stream(prefix: bytes, filler: bytes, filler_bytes: int, suffix: bytes) -> bytes:
    """
    Gzip ``prefix + filler * n + suffix`` (``filler_bytes`` of filler), one valid gzip member.

    The filler is deflated a MiB at a time with a full flush after each, which makes every MiB's
    compressed block the same bytes: one is computed and repeated, so a 1 GiB bomb takes well
    under a second to build and never exists inflated.
    """
    chunk = filler * (MIB // len(filler))
    count, rest = divmod(filler_bytes, len(chunk))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(prefix)
    blocks = [deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH) for _ in range(min(count, 3))]
    if count > 3:
        assert blocks[1] == blocks[2], "a full flush should make every chunk deflate alike"
        blocks += [blocks[2]] * (count - 3)
    parts += blocks
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    tail = chunk[:rest] + suffix
    parts.append(deflate.compress(tail) + deflate.flush(zlib.Z_FINISH))
    crc = zlib.crc32(tail, crc)
    size = len(prefix) + count * len(chunk) + len(tail)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + b"".join(parts) + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------ memory
_PULL_SCRIPT = r"""
import dataclasses, json, sys, time

from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.retry import RetryPolicy
from airflow_provider_cloud4wi.api.settings import ClientSettings

args = json.loads(sys.argv[1])
settings = ClientSettings.from_parts(
    source="the hostile test settings", host=args["url"], client_key=args["key"],
    client_secret=args["secret"], organization_id=args["org"], timeout=args["timeout"],
)
if args["cap"] is not None:
    settings = dataclasses.replace(settings, max_reply_bytes=args["cap"])
retry = RetryPolicy(max_attempts=2, wait_initial=0, wait_max=0, retry_after_cap=0)
client = EventsClient(settings, retry=retry)
client.get_token()  # the login, and every import a pull needs, before the baseline


def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


# Reset the peak to the RSS now: the imports' own peak (Airflow starting up) is not the pull's.
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before_kib = status_kib("VmRSS")
started = time.monotonic()
try:
    count = sum(1 for _ in client.iter_events(*args["window"], **args["pull_kwargs"]))
    outcome = {"events": count}
except Exception as err:
    outcome = {"error": type(err).__name__, "message": str(err)}
elapsed = time.monotonic() - started
peak_kib = status_kib("VmHWM")
print(json.dumps({**outcome, "growth_mb": (peak_kib - before_kib) / 1024, "seconds": elapsed}))
"""


def pull_in_subprocess(
    server_url: str, *, max_reply_bytes: int | None, timeout: float = 10.0
) -> dict[str, Any]:
    """
    Pull the test window from ``server_url`` in a fresh interpreter and report how it went.

    :return: ``events`` (a count) or ``error`` and ``message``; ``growth_mb``, the peak RSS during
        the pull (``VmHWM``, reset before it) less the RSS just before it (after login and imports), an upper
        bound of what the pull added; ``seconds``, the pull's duration.
    """
    args = {
        "url": server_url,
        "key": CLIENT_KEY,
        "secret": CLIENT_SECRET,
        "org": ORG,
        "timeout": timeout,
        "cap": max_reply_bytes,
        "window": list(WINDOW),
        "pull_kwargs": SEQUENTIAL,
    }
    done = subprocess.run(
        [sys.executable, "-c", _PULL_SCRIPT, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
