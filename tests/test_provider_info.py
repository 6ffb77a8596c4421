"""The provider as Airflow's providers manager sees it: connection type, form fields, behaviour."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import airflow
import pytest

from airflow_provider_cloud4wi import __version__, get_provider_info


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    return manager


def test_provider_info_is_valid_against_airflows_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(files(airflow).joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_provider_is_registered_through_its_entry_point(providers_manager: Any) -> None:
    provider = providers_manager.providers["airflow-provider-cloud4wi"]
    assert provider.version == __version__


def test_the_cloud4wi_connection_type_resolves_to_the_hook(providers_manager: Any) -> None:
    hook = providers_manager.hooks["cloud4wi"]
    assert hook.hook_class_name == "airflow_provider_cloud4wi.hooks.cloud4wi.Cloud4WiHook"
    assert hook.connection_id_attribute_name == "cloud4wi_conn_id"
    assert hook.connection_testable


def test_the_connection_form_offers_the_extra_fields(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    fields = {name for name in widgets if name.startswith("extra__cloud4wi__")}
    assert fields == {
        "extra__cloud4wi__organization_id",
        "extra__cloud4wi__token",
        "extra__cloud4wi__timeout",
        "extra__cloud4wi__max_reply_mb",
        "extra__cloud4wi__allow_insecure_http",
    }


def test_the_connection_form_relabels_credentials_and_hides_unused_fields(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours["cloud4wi"]
    assert behaviour["relabeling"]["login"] == "Client key"
    assert behaviour["relabeling"]["password"] == "Client secret"
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}
