"""The rendered object name is checked before anything is pulled or written."""

from __future__ import annotations

import pytest
from transfer_helpers import StorageCase, hour

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator


def refused(storage: StorageCase, sim: Cloud4WiSimulator, key: str) -> str:
    """Run an export to ``key``, which must fail before any API request or upload; return the error."""
    operator = storage.operator(key=key, window_start=hour(1, 2), window_end=hour(1, 3))
    with pytest.raises(ValueError, match=rf"^{storage.key_param} ") as failed:
        operator.execute(context={})  # type: ignore[arg-type]
    assert sim.stats["requests"]["organization_events"] == 0
    assert sum(sim.stats["requests"].values()) == 0
    assert storage.object_names() == []
    return str(failed.value)


@pytest.mark.parametrize("key", ["", "   ", "\n"])
def test_a_key_that_renders_empty_is_an_error_not_the_default_key(
    storage: StorageCase, sim: Cloud4WiSimulator, key: str
) -> None:
    message = refused(storage, sim, key)
    assert message.startswith(f"{storage.key_param} rendered to {key!r}")
    assert f"leave {storage.key_param} unset (None) for the default key" in message


@pytest.mark.parametrize(
    "key",
    [
        "exports/events\n.jsonl.gz",
        "exports/\tevents.jsonl.gz",
        "exports/events\x00.jsonl.gz",
        "exports/events\x1f.jsonl.gz",
        "exports/events\x7f.jsonl.gz",
    ],
)
def test_a_key_with_a_control_character_is_refused(
    storage: StorageCase, sim: Cloud4WiSimulator, key: str
) -> None:
    message = refused(storage, sim, key)
    assert message.startswith(f"{storage.key_param} must be an object name such as 'exports/events.jsonl.gz'")
    assert "contains a control character (newline, tab, ...); remove it" in message


@pytest.mark.parametrize(
    "key",
    ["../events.jsonl.gz", "exports/../events.jsonl.gz", "./events.jsonl.gz", "exports/./events.jsonl.gz"],
)
def test_a_key_with_a_dot_segment_is_refused(storage: StorageCase, sim: Cloud4WiSimulator, key: str) -> None:
    message = refused(storage, sim, key)
    assert message.startswith(f"{storage.key_param} must be an object name")
    assert repr(key) in message
    assert "'.' or '..' path segment" in message


def test_a_key_with_a_leading_slash_is_refused(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    message = refused(storage, sim, "/exports/events.jsonl.gz")
    assert message.startswith(f"{storage.key_param} must be an object name")
    assert "remove the leading or trailing '/'" in message


def test_dots_inside_a_name_are_not_segments(storage: StorageCase, sim: Cloud4WiSimulator) -> None:
    storage.run(hour(1, 2), hour(1, 3), key="exports/..events.v1.jsonl.gz")
    assert storage.data_names() == ["exports/..events.v1.jsonl.gz"]
