"""Fixtures for the client tests: clients talking to an in-memory API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fake_api import FAST_RETRY, FakeApi, settings

from airflow_provider_cloud4wi.api.client import EventsClient


@pytest.fixture
def client_for() -> Callable[..., EventsClient]:
    """Build a client talking to a :class:`FakeApi`, with retries that do not wait, pulling sequentially."""

    def build(api: FakeApi, *, max_concurrency: int = 1, **setting_overrides: Any) -> EventsClient:
        client = EventsClient(
            settings(**setting_overrides),
            retry=FAST_RETRY,
            transport=api,
            log=logging.getLogger("fake"),
            max_concurrency=max_concurrency,
        )
        return client

    return build
