"""Asset events of an export: what a run landed, in the ``extra`` of its outlets' events.

An ``Asset`` outlet (Airflow 2.11: ``Dataset``) gets one event whose extra says which window of
which organization was landed, how many events and bytes, and in which objects. An ``AssetAlias``
outlet (2.11: ``DatasetAlias``) gets the concrete asset of this run's location
(``s3://<bucket>/<key>``), for keys known only at run time, with the same extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["asset_event_extra", "record_asset_events"]


def asset_event_extra(
    result: Mapping[str, Any], organization_id: str, partition_key: str | None = None
) -> dict[str, Any]:
    """
    The extra of an export's asset events: JSON values only, never a token.

    :param result: the export's result (``objects``, ``manifest``, ``event_count``, ``bytes``,
        ``window_start``, ``window_end``).
    :param organization_id: the organization exported.
    :param partition_key: the run's partition key, if the run has one.
    """
    extra: dict[str, Any] = {
        "organization_id": organization_id,
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "event_count": result["event_count"],
        "bytes": result["bytes"],
        "objects": list(result["objects"]),
    }
    if result.get("manifest"):
        extra["manifest"] = result["manifest"]
    if partition_key:
        extra["partition_key"] = partition_key
    return extra


def record_asset_events(
    outlets: Iterable[Any], outlet_events: Any, extra: dict[str, Any], location_uri: str
) -> None:
    """
    Put ``extra`` on the events of the task's asset and asset-alias outlets.

    :param outlets: the task's outlets; other kinds of outlet are left as they are.
    :param outlet_events: the task context's ``outlet_events``.
    :param extra: the extra of each event.
    :param location_uri: the URI of this run's export, the asset an alias resolves to.
    """
    from airflow.providers.common.compat.assets import Asset, AssetAlias

    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            outlet_events[outlet].add(Asset(uri=location_uri), extra=_alias_event_extra(extra, AssetAlias))
        elif isinstance(outlet, Asset):
            outlet_events[outlet].extra.update(extra)


def _alias_event_extra(extra: dict[str, Any], alias_class: type) -> dict[str, Any]:
    # Airflow 2.11 groups alias events by frozenset(extra.items()), so there every value must be
    # hashable; a tuple is stored as the same JSON list.
    if alias_class.__name__ == "DatasetAlias":
        return {name: tuple(value) if isinstance(value, list) else value for name, value in extra.items()}
    return dict(extra)
