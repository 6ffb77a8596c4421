"""The Cloud4Wi connection type and its form, described once.

Airflow 3.2+ reads the form from the provider info (``conn-fields``); Airflow 2.11 asks the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour``. Both are built from the tables here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_cloud4wi.api.protocol import DEFAULT_BASE_URL

CONN_TYPE = "cloud4wi"

HIDDEN_FIELDS = ["schema", "port"]
RELABELING = {"host": "API base URL", "login": "Client key", "password": "Client secret"}
PLACEHOLDERS = {
    "host": DEFAULT_BASE_URL,
    "login": "client key from Manage > Developers > APIs (API v3)",
    "password": "client secret",
    "organization_id": "155d60f21dc1938562900a0e201d54f6",
    "timeout": "60",
}


@dataclass(frozen=True)
class ExtraField:
    """One field the connection keeps in its extra."""

    name: str
    label: str
    description: str
    kind: Literal["text", "secret", "number", "flag"]

    def json_schema(self) -> dict[str, Any]:
        """The field's schema as Airflow 3.2+'s ``conn-fields`` expects it."""
        types = {"text": "string", "secret": "string", "number": "number", "flag": "boolean"}
        schema: dict[str, Any] = {"type": [types[self.kind], "null"]}
        if self.kind == "secret":
            schema["format"] = "password"
        return schema


EXTRA_FIELDS = (
    ExtraField(
        "organization_id",
        "Organization ID",
        "The organization (tenant) id, the {cid} of the Events endpoint.",
        "text",
    ),
    ExtraField(
        "token",
        "Pre-issued JWT",
        "Optional. A JWT used as is instead of logging in with key/secret.",
        "secret",
    ),
    ExtraField("timeout", "Timeout (seconds)", "Read timeout of each API request. Default 60.", "number"),
    ExtraField(
        "max_reply_mb",
        "Largest reply (MiB)",
        "Replies larger than this, on the wire or decompressed, are refused. Default 64.",
        "number",
    ),
    ExtraField(
        "allow_insecure_http",
        "Allow plain http",
        "Send credentials over plain http to a non-loopback host.",
        "flag",
    ),
)


def provider_connection_type(hook_class_name: str) -> dict[str, Any]:
    """
    The ``connection-types`` entry of the provider info.

    :param hook_class_name: the dotted path of the hook class.
    """
    return {
        "hook-class-name": hook_class_name,
        "hook-name": "Cloud4Wi",
        "connection-type": CONN_TYPE,
        "ui-field-behaviour": {
            "hidden-fields": HIDDEN_FIELDS,
            "relabeling": RELABELING,
            "placeholders": {**PLACEHOLDERS, "extra": '{"organization_id": "<cid>"}'},
        },
        "conn-fields": {
            field.name: {
                "label": field.label,
                "description": field.description,
                "schema": field.json_schema(),
            }
            for field in EXTRA_FIELDS
        },
    }


def ui_field_behaviour() -> dict[str, Any]:
    """What Airflow 2.11's form relabels and hides."""
    return {"hidden_fields": HIDDEN_FIELDS, "relabeling": RELABELING, "placeholders": PLACEHOLDERS}


def form_widgets() -> dict[str, Any]:
    """The extra fields as Airflow 2.11's Flask form widgets ({} where the FAB UI is absent)."""
    try:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, PasswordField, StringField
    except ImportError:  # Airflow 3 without the FAB UI: the provider info describes the form
        return {}
    widgets: dict[str, Any] = {}
    for field in EXTRA_FIELDS:
        label = lazy_gettext(field.label)
        if field.kind == "flag":
            widgets[field.name] = BooleanField(label)
        elif field.kind == "secret":
            widgets[field.name] = PasswordField(label, widget=BS3PasswordFieldWidget())
        else:
            widgets[field.name] = StringField(label, widget=BS3TextFieldWidget())
    return widgets
