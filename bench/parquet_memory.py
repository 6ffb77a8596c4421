"""Peak memory and time of the Parquet part writer alone, on simulated events (not part of `make bench`).

    python -m bench.parquet_memory 10000 1000000

Each size runs in a child process of its own; the events are rendered a page at a time by the
simulator's dataset (as the pull would hand them over), so only the writer's own memory grows.
Prints, per size: events, seconds, events/s, peak RSS (``ru_maxrss``) and the file size.
"""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

from airflow_provider_cloud4wi.testing.simulator import DEFAULT_ORGANIZATION_ID, EventDataset

_PAGE = 10_000


def _lines(count: int) -> Iterator[bytes]:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    dataset = EventDataset(
        seed=1,
        organization_id=DEFAULT_ORGANIZATION_ID,
        data_start=start,
        data_end=start + dt.timedelta(hours=count // 9_999 + 1),
        events_per_hour=9_999,
        customers=10_000,
    )
    for lo in range(dataset.lo, dataset.lo + count, _PAGE):
        yield from dataset.render_many(range(lo, min(lo + _PAGE, dataset.lo + count)))


def _child(count: int) -> None:
    from airflow_provider_cloud4wi.parquet import write_parquet_parts

    started = time.monotonic()
    with write_parquet_parts(_lines(count)) as parts:
        elapsed = time.monotonic() - started
        size = sum(part.size_bytes for part in parts)
        events = sum(part.events for part in parts)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{events:>9,} events  {elapsed:6.1f} s  {events / elapsed:9,.0f} ev/s  "
        f"{peak_mb:6.0f} MB peak RSS  {size:>12,} B"
    )


def main(argv: list[str]) -> None:
    """Run every size given on the command line in its own process."""
    if argv[:1] == ["--child"]:
        _child(int(argv[1]))
        return
    for size in argv or ["10000", "1000000"]:
        subprocess.run([sys.executable, "-m", "bench.parquet_memory", "--child", size], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
