"""Apache Airflow provider for the Cloud4Wi Explore Events API."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]

CONN_TYPE = "cloud4wi"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's providers manager (entry point ``apache_airflow_provider``)."""
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
            {
                "hook-class-name": "airflow_provider_cloud4wi.hooks.cloud4wi.Cloud4WiHook",
                "hook-name": "Cloud4Wi",
                "connection-type": CONN_TYPE,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Client key",
                        "password": "Client secret",
                    },
                    "placeholders": {
                        "host": "https://explore.cloud4wi.com",
                        "login": "client key from Manage > Developers > APIs (API v3)",
                        "password": "client secret",
                        "organization_id": "155d60f21dc1938562900a0e201d54f6",
                        "timeout": "60",
                        "extra": '{"organization_id": "<cid>"}',
                    },
                },
                "conn-fields": {
                    "organization_id": {
                        "label": "Organization ID",
                        "description": "The organization (tenant) id, the {cid} of the Events endpoint.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "token": {
                        "label": "Pre-issued JWT",
                        "description": "Optional. A JWT used as is instead of logging in with key/secret.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Read timeout of each API request. Default 60.",
                        "schema": {"type": ["number", "null"]},
                    },
                    "allow_insecure_http": {
                        "label": "Allow plain http",
                        "description": "Send credentials over plain http to a non-loopback host.",
                        "schema": {"type": ["boolean", "null"]},
                    },
                },
            }
        ],
    }
