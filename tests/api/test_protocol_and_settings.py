"""What is refused before any request: ids, event types, page sizes, hosts and credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_provider_cloud4wi.api import protocol
from airflow_provider_cloud4wi.api.settings import ClientSettings


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "-lead", "x" * 129])
def test_an_id_that_would_change_the_request_path_is_refused_naming_the_parameter(bad: str) -> None:
    with pytest.raises(ValueError, match=r"customer_id .* is not an id"):
        protocol.check_customer_id(bad)


def test_event_types_are_checked_deduplicated_and_joined() -> None:
    assert protocol.normalize_event_types(["visit", "login, visit"]) == "visit,login"
    with pytest.raises(ValueError, match="holds no event type"):
        protocol.normalize_event_types("  ")
    with pytest.raises(ValueError, match=r"Unknown event type\(s\) \['vist'\]"):
        protocol.normalize_event_types("vist")


@pytest.mark.parametrize("bad", [0, 10_001, True, 2.5, "10"])
def test_a_page_size_outside_the_apis_range_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 10000"):
        protocol.check_page_size(bad)  # type: ignore[arg-type]


def test_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    parts = {"source": "connection 'c'", "client_key": "k", "client_secret": "s"}
    with pytest.raises(ValueError, match="Connection 'c' would send the client secret over plain http"):
        ClientSettings.from_parts(host="http://api.example.test", **parts)
    allowed = ClientSettings.from_parts(host="http://api.example.test", allow_insecure_http=True, **parts)
    assert allowed.base_url == "http://api.example.test"
    assert (
        ClientSettings.from_parts(host="http://127.0.0.1:8080", **parts).base_url == "http://127.0.0.1:8080"
    )


def test_pasted_credentials_are_stripped_and_never_shown_in_a_repr() -> None:
    settings = ClientSettings.from_parts(
        source="connection 'c'", host=None, client_key=" key\n", client_secret="\tsecret-42 \n"
    )
    assert (settings.client_key, settings.client_secret) == ("key", "secret-42")
    assert "secret-42" not in repr(settings)


def test_the_client_imports_and_works_without_airflow_installed() -> None:
    script = """
import sys
class NoAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError("no airflow here")
sys.meta_path.insert(0, NoAirflow())
from airflow_provider_cloud4wi.api.client import EventsClient
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError
assert Cloud4WiApiError.__mro__[1] is Exception
assert not any(name == "airflow" or name.startswith("airflow.") for name in sys.modules)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
