"""Which objects an earlier run of an export left that this run may delete, and which uploads it may abort.

The rule keeps one promise: an object the manifest in place lists is never deleted. Once this
run's manifest has replaced the previous one, it deletes the objects the previous manifest listed,
names without a run token (an unsplit key this run did not rewrite, or parts written before
manifests existed), objects of earlier tries of the same task on the same window (Airflow never runs
two tries of one task instance at once, so those runs are over), and run-named objects nobody has
touched for :data:`ABANDONED_AFTER`. Anything else may belong to another task's run still under way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence

from airflow_provider_cloud4wi.transfers.checksums import StoredObject
from airflow_provider_cloud4wi.transfers.keys import ExportLayout, OwnedName
from airflow_provider_cloud4wi.transfers.manifest import Manifest

__all__ = ["ABANDONED_AFTER", "abort_rule", "stale_keys"]

#: A run-named object of another task older than this is taken as abandoned (its run was killed).
ABANDONED_AFTER = dt.timedelta(hours=24)


def _listed_by(replaced: Manifest | None, layout: ExportLayout) -> set[str]:
    """The replaced manifest's keys inside this export's own prefixes (a manifest never widens them)."""
    if replaced is None:
        return set()
    prefixes = tuple(layout.listing_prefixes())
    return {key for key in replaced.keys if key.startswith(prefixes)}


def stale_keys(
    found: Sequence[StoredObject],
    *,
    layout: ExportLayout,
    written: Collection[str],
    replaced: Manifest | None,
    identity: str | None,
    now: dt.datetime,
) -> list[str]:
    """
    The objects to delete once this run's export is complete (and, with a manifest, committed).

    :param found: the objects listed under the export's prefixes when the run started.
    :param layout: this run's names.
    :param written: the keys this run wrote (its manifest included).
    :param replaced: the manifest this run's manifest replaced, if there was one.
    :param identity: the task-and-window part of run tokens that are earlier tries of this task;
        None when the run has no task instance (then no token counts as its own).
    :param now: the current time, for the age of abandoned objects.
    """
    listed = _listed_by(replaced, layout)
    stale = {key for key in listed if key not in written}
    for item in found:
        owned = layout.parse(item.key)
        if owned is not None and item.key not in written and _left_over(owned, item, layout, identity, now):
            stale.add(item.key)
    return sorted(stale)


def _is_earlier_try(run: str, identity: str | None) -> bool:
    return identity is not None and run.startswith(identity + "-")


def _left_over(
    owned: OwnedName, item: StoredObject, layout: ExportLayout, identity: str | None, now: dt.datetime
) -> bool:
    if layout.run is None or owned.run is None:  # no manifest, or a name without a run token
        return True
    return _is_earlier_try(owned.run, identity) or now - item.updated > ABANDONED_AFTER


def abort_rule(
    layout: ExportLayout, identity: str | None, run_started: dt.datetime
) -> Callable[[str, dt.datetime], bool]:
    """
    Which open multipart uploads a starting run aborts: those a killed run left under this export's names.

    An upload under a run-named key is aborted when its token is an earlier try of this task, or
    when it is older than :data:`ABANDONED_AFTER`; an upload under a name without a token (the
    unsplit key) when it started before this run did.

    :param layout: this run's names.
    :param identity: as for :func:`stale_keys`.
    :param run_started: when this run started.
    """

    def should_abort(key: str, initiated: dt.datetime) -> bool:
        owned = layout.parse(key)
        if owned is None:
            return False
        if owned.run is None:
            return initiated < run_started
        if _is_earlier_try(owned.run, identity):
            return owned.run != layout.run
        return run_started - initiated > ABANDONED_AFTER

    return should_abort
