"""OpenLineage datasets of an export: the events read from the API, and where they were written.

Nothing here imports OpenLineage at module level: the provider works without
``apache-airflow-providers-openlineage``, and these functions are only called by its listener
(through the operators' ``get_openlineage_facets_on_start/_on_complete``), so it is installed then.

The datasets follow OpenLineage's naming: the API is ``cloud4wi://<host[:port]>`` with the name
``organizations/<cid>/events``; the objects are ``s3://<bucket>`` / ``gs://<bucket>`` with the key
(or, for an export split into parts, the parts' common prefix) as name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_cloud4wi.windows import Window

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["EVENTS_FACET_NAME", "EventsSource", "ExportTarget", "WrittenStatistics", "export_lineage"]

#: The key of the input dataset's facet that holds the query (filters and window).
EVENTS_FACET_NAME = "cloud4wiEvents"
# Where the facet is described (a custom facet must name its schema).
_FACET_SCHEMA_URL = (
    "https://github.com/cloud4wi-airflow/airflow-provider-cloud4wi/blob/main/README.md#lineage-openlineage"
)


@dataclass(frozen=True)
class EventsSource:
    """
    The events an export reads: the API, the organization, the filters and the window.

    :param api_url: the API base URL of the connection (never holds credentials).
    :param organization_id: the organization (``cid``).
    :param window: the half-open window read.
    :param event_types: the event types filter, comma-separated as the API takes it; None for all.
    :param customer_id: the one contact whose events are read; None for every contact.
    """

    api_url: str
    organization_id: str
    window: Window
    event_types: str | None = None
    customer_id: str | None = None

    @property
    def namespace(self) -> str:
        """``cloud4wi://<host[:port]>``: the API the events come from."""
        return f"cloud4wi://{urlsplit(self.api_url).netloc.rpartition('@')[2]}"

    @property
    def name(self) -> str:
        """``organizations/<cid>/events``: the organization's event stream."""
        return f"organizations/{self.organization_id}/events"


@dataclass(frozen=True)
class ExportTarget:
    """
    Where an export writes: a bucket, and the key or the prefix its parts share.

    :param scheme: ``s3`` or ``gs``.
    :param bucket: the bucket name.
    :param name: the object key, or the parts' common prefix for a split export.
    """

    scheme: str
    bucket: str
    name: str

    @property
    def namespace(self) -> str:
        """``<scheme>://<bucket>``."""
        return f"{self.scheme}://{self.bucket}"

    @property
    def uri(self) -> str:
        """``<scheme>://<bucket>/<name>``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class WrittenStatistics:
    """
    What an export wrote.

    :param rows: events written.
    :param bytes: bytes written, over every object.
    :param files: objects written.
    """

    rows: int
    bytes: int
    files: int


@functools.cache
def _events_facet_class() -> type:
    """The input dataset facet class, defined on first use so OpenLineage stays an optional import."""
    import attrs
    from airflow.providers.common.compat.openlineage.facet import DatasetFacet

    @attrs.define
    class Cloud4WiEventsDatasetFacet(DatasetFacet):  # type: ignore[misc]
        """The query of a Cloud4Wi events export: organization, window and filters."""

        # camelCase, as OpenLineage's own facets name their fields.
        organizationId: str
        windowStart: str
        windowEnd: str
        eventTypes: list[str] | None = None
        customerId: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return _FACET_SCHEMA_URL

    return Cloud4WiEventsDatasetFacet


def _input_dataset(source: EventsSource) -> Any:
    from airflow.providers.common.compat.openlineage.facet import InputDataset

    facet = _events_facet_class()(
        organizationId=source.organization_id,
        windowStart=source.window.start.isoformat(),
        windowEnd=source.window.end.isoformat(),
        eventTypes=source.event_types.split(",") if source.event_types else None,
        customerId=source.customer_id,
    )
    return InputDataset(namespace=source.namespace, name=source.name, facets={EVENTS_FACET_NAME: facet})


def _output_dataset(target: ExportTarget, written: WrittenStatistics | None) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    output_facets: dict[str, Any] = {}
    if written is not None:
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=written.rows, size=written.bytes, fileCount=written.files
        )
    return OutputDataset(namespace=target.namespace, name=target.name, outputFacets=output_facets)


def export_lineage(
    source: EventsSource, target: ExportTarget, written: WrittenStatistics | None = None
) -> OperatorLineage:
    """
    The OpenLineage lineage of one export: the API's events in, the objects out.

    :param source: the events read.
    :param target: where they were (or are to be) written.
    :param written: what was written, once known; None at the start of a run.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=[_input_dataset(source)], outputs=[_output_dataset(target, written)])
