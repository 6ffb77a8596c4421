"""The one place where Airflow 2.11 and 3.x differ for this provider.

Everything imports Airflow's authoring API from here, so a version difference is handled once.
``airflow.providers.common.compat.sdk`` resolves each name to ``airflow.sdk`` on Airflow 3 and to
the 2.x module otherwise.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    Context,
    conf,
    mask_secret,
)
from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "TriggerEvent",
    "conf",
    "default_deferrable",
    "mask_secret",
]


def default_deferrable() -> bool:
    """Return Airflow's ``[operators] default_deferrable`` setting (False when unset)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)
