"""The settings of one simulator instance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from airflow_provider_cloud4wi.testing.simulator.faults import Faults
from airflow_provider_cloud4wi.testing.simulator.protocol import (
    DEFAULT_CLIENT_KEY,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORGANIZATION_ID,
)

__all__ = ["SimulatorConfig"]


@dataclass(frozen=True)
class SimulatorConfig:
    """Settings of a simulator instance (see the module docstring for the dataset formula).

    ``data_end`` is exclusive. ``token_lifetime`` and ``scroll_ttl`` are in seconds;
    ``page_cache_bytes`` bounds the cache of rendered pages (0 disables it). ``jwt_secret`` defaults
    to a random key per instance.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    organization_id: str = DEFAULT_ORGANIZATION_ID
    client_key: str = DEFAULT_CLIENT_KEY
    client_secret: str = DEFAULT_CLIENT_SECRET
    data_start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    data_end: dt.datetime = dt.datetime(2024, 1, 8, tzinfo=dt.timezone.utc)
    events_per_hour: int = 120
    customers: int = 50
    token_lifetime: float = 86400.0
    scroll_ttl: float = 120.0
    page_cache_bytes: int = 0
    faults: Faults = field(default_factory=Faults)
    verbose: bool = False
    jwt_secret: str | None = None

    def __post_init__(self) -> None:
        for name in ("data_start", "data_end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be a timezone-aware datetime")
        if self.data_end < self.data_start:
            raise ValueError("data_end must not be before data_start")
        if self.events_per_hour <= 0 or self.events_per_hour % 3:
            raise ValueError(
                f"events_per_hour must be a positive multiple of 3 (events come in bursts of 3), "
                f"got {self.events_per_hour}"
            )
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.token_lifetime <= 0 or self.scroll_ttl <= 0:
            raise ValueError("token_lifetime and scroll_ttl must be positive")
        if self.page_cache_bytes < 0:
            raise ValueError("page_cache_bytes must not be negative")
