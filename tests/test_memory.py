"""Freed memory handed back to the system between the blocks of an export."""

from __future__ import annotations

import platform

import pytest

from airflow_provider_cloud4wi import memory


def test_releasing_memory_yields_every_item_and_releases_after_each(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: seen.append("released"))
    for item in memory.releasing_memory(["a", "b"]):
        seen.append(item)
    assert seen == ["a", "released", "b", "released"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_releasing_memory_every_n_items_releases_after_each_nth(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: seen.append("released"))
    for item in memory.releasing_memory("abcde", every=2):
        seen.append(item)
    assert seen == ["a", "b", "released", "c", "d", "released", "e"]


def test_glibcs_malloc_trim_is_found_and_called_with_zero_padding() -> None:
    trim = memory._malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was handed back, 0: there was none to hand back


def test_where_the_c_library_has_no_malloc_trim_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)  # musl, macOS, Windows
    assert memory.release_freed_memory() is None
