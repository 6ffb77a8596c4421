"""The client and the simulator are two independent models of the API: they must agree on its limits.

The simulator never imports the client (it would then test the client against itself), so the
agreement is checked here, from outside both.
"""

from __future__ import annotations

import json
import subprocess
import sys

import airflow_provider_cloud4wi.testing.simulator as simulator
from airflow_provider_cloud4wi.hooks.cloud4wi import KNOWN_EVENT_TYPES, MAX_PAGE_SIZE

CLIENT_PACKAGES = ("airflow_provider_cloud4wi.hooks", "airflow_provider_cloud4wi.api")


def test_the_simulator_serves_exactly_the_event_types_the_client_knows() -> None:
    assert set(simulator.EVENT_TYPES) == set(KNOWN_EVENT_TYPES)
    assert len(simulator.EVENT_TYPES) == len(set(simulator.EVENT_TYPES))


def test_the_simulator_and_the_client_share_the_page_size_limit() -> None:
    assert simulator.MAX_PAGE_SIZE == MAX_PAGE_SIZE


def test_the_simulator_accepts_the_limit_and_refuses_one_more(
    cloud4wi_simulator: simulator.Cloud4WiSimulator,
) -> None:
    import requests

    token = cloud4wi_simulator.issue_token()
    url = f"{cloud4wi_simulator.url}/v1/organizations/{cloud4wi_simulator.organization_id}/events"
    headers = {"Authorization": f"Bearer {token}"}
    at_limit = requests.get(url, params={"size": str(MAX_PAGE_SIZE)}, headers=headers, timeout=30)
    beyond = requests.get(url, params={"size": str(MAX_PAGE_SIZE + 1)}, headers=headers, timeout=30)
    assert at_limit.status_code == 200
    assert beyond.status_code == 400


def test_the_simulator_package_imports_no_client_code() -> None:
    probe = (
        "import json, sys\n"
        "import airflow_provider_cloud4wi.testing.simulator\n"
        "import airflow_provider_cloud4wi.testing.simulator.__main__\n"
        "import airflow_provider_cloud4wi.testing.pytest_plugin\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "airflow_provider_cloud4wi.testing.simulator.server" in loaded
    client = [name for name in loaded if name.startswith(CLIENT_PACKAGES)]
    assert client == []
