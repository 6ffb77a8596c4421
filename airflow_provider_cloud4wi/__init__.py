"""Apache Airflow provider for the Cloud4Wi Explore Events API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's providers manager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_cloud4wi.connection import provider_connection_type

    return {
        "package-name": "airflow-provider-cloud4wi",
        "name": "Cloud4Wi",
        "description": "Cloud4Wi Explore Events API: hook, transfers to Amazon S3 and Google Cloud "
        "Storage, and a deferrable sensor.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Cloud4Wi",
                "external-doc-url": "https://create.cloud4wi.ai/dev-hub/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Cloud4Wi",
                "python-modules": ["airflow_provider_cloud4wi.hooks.cloud4wi"],
            }
        ],
        "operators": [],
        "sensors": [
            {
                "integration-name": "Cloud4Wi",
                "python-modules": ["airflow_provider_cloud4wi.sensors.events"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Cloud4Wi",
                "python-modules": ["airflow_provider_cloud4wi.triggers.events"],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "Cloud4Wi",
                "target-integration-name": "Amazon Simple Storage Service (S3)",
                "python-module": "airflow_provider_cloud4wi.transfers.events_to_s3",
            },
            {
                "source-integration-name": "Cloud4Wi",
                "target-integration-name": "Google Cloud Storage (GCS)",
                "python-module": "airflow_provider_cloud4wi.transfers.events_to_gcs",
            },
        ],
        "connection-types": [
            provider_connection_type("airflow_provider_cloud4wi.hooks.cloud4wi.Cloud4WiHook")
        ],
    }
