"""Fixtures of the analytics tests: the public docs' sample events and simulated event lines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cloud4wi.testing.simulator import DEFAULT_ORGANIZATION_ID, EventDataset

#: The "Data example" of the public Events page, verbatim (its ``count`` says 20; it holds 19).
DOCS_EXAMPLE = Path(__file__).parent / "data" / "docs_events_example.json"

#: Four hours across midnight UTC, so the landed tree has two date partitions.
SIMULATED_START = dt.datetime(2024, 5, 1, 22, tzinfo=dt.timezone.utc)
SIMULATED_HOURS = 4
SIMULATED_EVENTS_PER_HOUR = 3_000


def compact(document: Any) -> bytes:
    """A document as the API's compact JSON text, the way the pull hands it to the writers."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.fixture(scope="session")
def docs_events() -> list[dict[str, Any]]:
    """The sample events of the public docs, as documents."""
    events: list[dict[str, Any]] = json.loads(DOCS_EXAMPLE.read_text(encoding="utf-8"))["events"]
    return events


@pytest.fixture(scope="session")
def docs_event_lines(docs_events: list[dict[str, Any]]) -> list[bytes]:
    """The sample events of the public docs, one compact JSON text each."""
    return [compact(event) for event in docs_events]


@pytest.fixture(scope="session")
def simulated_dataset() -> EventDataset:
    """The simulator's dataset over :data:`SIMULATED_HOURS` hours from :data:`SIMULATED_START`."""
    return EventDataset(
        seed=13,
        organization_id=DEFAULT_ORGANIZATION_ID,
        data_start=SIMULATED_START,
        data_end=SIMULATED_START + dt.timedelta(hours=SIMULATED_HOURS),
        events_per_hour=SIMULATED_EVENTS_PER_HOUR,
        customers=500,
    )


@pytest.fixture(scope="session")
def simulated_lines(simulated_dataset: EventDataset) -> list[bytes]:
    """Every simulated event, oldest first, as the API's own JSON text."""
    return simulated_dataset.render_many(range(simulated_dataset.lo, simulated_dataset.hi))
