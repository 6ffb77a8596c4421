"""C, the raw limit: the same pages with a bare requests.Session, read and thrown away, then one upload.

Only the head of each reply is looked at (a regex for ``count`` and ``scrollId`` in its first
kilobyte); the body streams through 1 MiB reads into nothing. Then as many bytes as were read
are uploaded with a bare boto3 ``upload_file`` (the managed transfer S3Hook.load_file uses) from
a sparse local file, so nothing is held in memory. That is C. It also times, apart, an upload
of as many bytes as A's gzip object (``--upload-size``): pull + that upload is reported as
"C-min", the floor for a task that must also download everything but uploads compressed output.
"""

from __future__ import annotations

import re
import tempfile
import time
from typing import Any

from bench.common import CLIENT_KEY, CLIENT_SECRET, PAGE_SIZE, events_path

_HEAD = re.compile(rb'"count":(\d+),(?:"scrollId":"([^"]+)",)?')
_CHUNK = 1 << 20


def login(session: Any, base_url: str) -> str:
    reply = session.post(
        base_url + "/v1/sts/login/services", json={"clientKey": CLIENT_KEY, "clientSecret": CLIENT_SECRET}
    )
    reply.raise_for_status()
    return str(reply.json()["token"])


def raw_pull(base_url: str, params: dict[str, Any]) -> tuple[int, int, int]:
    """Fetch every page of the scroll, discarding the bytes; return (events, pages, bytes read)."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + login(session, base_url)
    url = base_url + events_path()
    events = pages = read = 0
    query: dict[str, Any] = params
    while True:
        with session.get(url, params=query, stream=True) as reply:
            reply.raise_for_status()
            head = b""
            for chunk in reply.iter_content(_CHUNK):
                if len(head) < 1024:
                    head += chunk[:1024]
                read += len(chunk)
        match = _HEAD.search(head)
        if match is None:
            raise RuntimeError(f"unexpected page head: {head[:200]!r}")
        count = int(match.group(1))
        pages += 1
        events += count
        if count == 0 or match.group(2) is None:
            break
        query = {"scrollId": match.group(2).decode(), "size": PAGE_SIZE}
    session.close()
    return events, pages, read


def upload_sparse(client: Any, bucket: str, key: str, size: int) -> float:
    """Upload ``size`` zero bytes from a sparse file; return the seconds it took."""
    with tempfile.NamedTemporaryFile(prefix="bench-c-") as handle:
        handle.truncate(size)
        handle.flush()
        started = time.perf_counter()
        client.upload_file(handle.name, bucket, key)
        return time.perf_counter() - started


def run(
    base_url: str, moto_url: str, bucket: str, key: str, params: dict[str, Any], small_size: int
) -> tuple[int, int, dict[str, float]]:
    from bench.servers import s3_client

    started = time.perf_counter()
    events, _, read = raw_pull(base_url, params)
    pull = time.perf_counter() - started
    client = s3_client(moto_url)
    upload = upload_sparse(client, bucket, key, read)
    phases = {"pull": pull, "upload_raw": upload, "bytes_read": float(read)}
    if small_size:
        phases["upload_small"] = upload_sparse(client, bucket, key + ".small", small_size)
        phases["exclude"] = phases["upload_small"]  # not part of C's wall time
    return events, read, phases
