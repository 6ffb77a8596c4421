"""An export pulled in parallel lands exactly the bytes of a sequential one, under faults too."""

from __future__ import annotations

import pytest
from transfer_helpers import StorageCase, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults

FAULTS = Faults(
    rate_limit=0.05,
    retry_after=0,
    server_error=0.05,
    lost_reply=0.05,
    duplicates=0.2,
    scroll_expiry=0.05,
    unauthorized_burst_rate=0.1,
    max_consecutive_faults=2,
)


@pytest.mark.parametrize("max_concurrency", [4, 16])
def test_a_parallel_export_writes_the_sequential_exports_bytes(
    storage: StorageCase, sim: Cloud4WiSimulator, max_concurrency: int
) -> None:
    start, end = hour(2, 0), hour(2, 6)
    sequential = storage.run(start, end, key="sequential.jsonl.gz", page_size=37, max_concurrency=1)
    sim.set_faults(FAULTS)
    parallel = storage.run(start, end, key="parallel.jsonl.gz", page_size=37, max_concurrency=max_concurrency)
    objects = storage.snapshot()
    assert objects["parallel.jsonl.gz"] == objects["sequential.jsonl.gz"]
    assert parallel["event_count"] == sequential["event_count"] == len(list(sim.expected_events(start, end)))


def test_max_concurrency_outside_its_range_is_refused_naming_it(storage: StorageCase) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be an integer from 1 to 32"):
        storage.operator(key="x.jsonl.gz", max_concurrency=0)
