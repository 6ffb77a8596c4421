"""The simulator's auth faults (401 bursts, 403 for expired tokens, persistent 401), its latency
and its concurrency limit, exercised over real HTTP with ``requests``."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

import airflow_provider_cloud4wi
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults
from airflow_provider_cloud4wi.testing.pytest_plugin import SimulatorFactory
from airflow_provider_cloud4wi.testing.simulator import DEFAULT_CLIENT_KEY, DEFAULT_CLIENT_SECRET
from airflow_provider_cloud4wi.testing.simulator.cli import _build_parser, _faults_from

pytest_plugins = ["airflow_provider_cloud4wi.testing.pytest_plugin"]

NEW_FAULTS = (
    "unauthorized_burst",
    "unauthorized_burst_rate",
    "expired_token_403",
    "persistent_401",
    "max_concurrent_requests",
)


def login(simulator: Cloud4WiSimulator, session: requests.Session | None = None) -> str:
    response = (session or requests).post(
        f"{simulator.url}/v1/sts/login/services",
        json={"clientKey": DEFAULT_CLIENT_KEY, "clientSecret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def events(
    simulator: Cloud4WiSimulator, token: str, session: requests.Session | None = None
) -> requests.Response:
    return (session or requests).get(
        f"{simulator.url}/v1/organizations/{simulator.organization_id}/events",
        params={"size": "1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def statuses(simulator: Cloud4WiSimulator, token: str, count: int) -> list[int]:
    with requests.Session() as session:
        return [events(simulator, token, session).status_code for _ in range(count)]


def at_once(count: int, request: Callable[[requests.Session], requests.Response]) -> list[requests.Response]:
    """``count`` requests sent at the same moment from as many threads (one connection each)."""
    barrier = threading.Barrier(count)
    replies: list[requests.Response] = []
    lock = threading.Lock()

    def run() -> None:
        with requests.Session() as session:
            barrier.wait(timeout=10)
            reply = request(session)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(replies) == count
    return replies


def test_the_new_faults_are_off_by_default() -> None:
    defaults = Faults()
    assert [getattr(defaults, name) for name in NEW_FAULTS] == [0, 0.0, False, False, 0]


@pytest.mark.parametrize(
    "settings",
    [{"unauthorized_burst": -1}, {"unauthorized_burst_rate": 1.5}, {"max_concurrent_requests": -2}],
)
def test_out_of_range_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        Faults(**settings)


def test_a_401_burst_refuses_the_first_requests_of_each_fresh_token(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(faults=Faults(unauthorized_burst=2))
    first = login(simulator)
    refused = events(simulator, first)

    assert error_of(refused, 401) == "token not known yet"
    assert statuses(simulator, first, 3) == [401, 200, 200]  # the token was not revoked
    second = login(simulator)
    assert statuses(simulator, second, 3) == [401, 401, 200]
    assert statuses(simulator, first, 1) == [200]
    assert statuses(simulator, simulator.issue_token(), 1) == [200]  # a pre-issued token: no login
    assert simulator.stats["faults"]["unauthorized_burst"] == 4


def test_the_burst_length_is_set_at_login(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator = cloud4wi_simulator_factory()
    before = login(simulator)
    simulator.set_faults(Faults(unauthorized_burst=1))
    after = login(simulator)
    simulator.set_faults(Faults())

    assert statuses(simulator, before, 1) == [200]
    assert statuses(simulator, after, 2) == [401, 200]


def burst_lengths(simulator: Cloud4WiSimulator, logins: int) -> list[int]:
    lengths = []
    for _ in range(logins):
        token = login(simulator)
        replies = statuses(simulator, token, 4)
        assert replies[-1] == 200
        lengths.append(replies.index(200))
    return lengths


def test_random_bursts_last_one_to_three_requests_and_follow_the_seed(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    always = [
        burst_lengths(cloud4wi_simulator_factory(seed=seed, faults=Faults(unauthorized_burst_rate=1.0)), 12)
        for seed in (3, 3)
    ]
    sometimes = burst_lengths(
        cloud4wi_simulator_factory(seed=3, faults=Faults(unauthorized_burst_rate=0.5)), 16
    )

    assert always[0] == always[1]
    assert set(always[0]) == {1, 2, 3}
    assert 0 in sometimes
    assert set(sometimes) - {0}


def expired_token(simulator: Cloud4WiSimulator) -> str:
    issued = int(time.time()) - 120
    claims = {"sub": DEFAULT_CLIENT_KEY, "org": simulator.organization_id, "iat": issued, "exp": issued + 60}
    assert simulator.config.jwt_secret is not None
    return jwt.encode({**claims, "jti": "0" * 32}, simulator.config.jwt_secret, algorithm="HS256")


def error_of(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR"
    return str(body["message"])


def test_an_expired_token_gets_403_from_a_quirky_gateway(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(jwt_secret="a-known-secret-of-at-least-32-bytes")
    expired = expired_token(simulator)
    assert error_of(events(simulator, expired), 401) == "token expired"

    simulator.set_faults(Faults(expired_token_403=True))
    quirky = events(simulator, expired)
    logout = requests.post(
        f"{simulator.url}/v1/sts/logout", headers={"Authorization": f"Bearer {expired}"}, timeout=10
    )

    assert error_of(quirky, 403) == "forbidden"
    assert error_of(logout, 401) == "token expired"  # only data requests go through that gateway
    assert statuses(simulator, login(simulator), 1) == [200]
    assert simulator.stats["faults"]["expired_token_403"] == 1


def test_a_persistent_401_refuses_every_data_request_while_login_succeeds(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(faults=Faults(persistent_401=True, max_consecutive_faults=1))
    tokens = [login(simulator) for _ in range(3)]

    assert [statuses(simulator, token, 2) for token in tokens] == [[401, 401]] * 3
    assert error_of(events(simulator, tokens[0]), 401) == "token not accepted"
    assert simulator.stats["logins"] == 3
    assert simulator.stats["faults"]["persistent_401"] == 7
    simulator.set_faults(Faults())
    assert statuses(simulator, tokens[0], 1) == [200]


def test_latency_delays_each_reply_and_concurrent_requests_overlap(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(faults=Faults(latency_ms=300))
    token = simulator.issue_token()

    begin = time.perf_counter()
    replies = at_once(4, lambda session: events(simulator, token, session))
    took = time.perf_counter() - begin

    assert [reply.status_code for reply in replies] == [200] * 4
    assert all(reply.elapsed.total_seconds() >= 0.3 for reply in replies)
    assert took < 0.9  # one after the other would take 1.2 s
    assert simulator.stats["max_requests_in_flight"] == 4


def test_requests_beyond_the_concurrency_limit_get_429_with_retry_after(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(faults=Faults(max_concurrent_requests=2, latency_ms=400))
    token = simulator.issue_token()

    replies = at_once(5, lambda session: events(simulator, token, session))

    assert Counter(reply.status_code for reply in replies) == {200: 2, 429: 3}
    refused = [reply for reply in replies if reply.status_code == 429]
    assert {reply.headers.get("Retry-After") for reply in refused} == {"1"}
    assert {error_of(reply, 429) for reply in refused} == {"too many concurrent requests"}
    assert simulator.stats["max_requests_in_flight"] == 2
    assert simulator.stats["faults"]["concurrency_limit"] == 3
    assert statuses(simulator, token, 1) == [200]  # the slots were given back


def test_the_concurrency_limit_counts_logins_and_uses_retry_after(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(
        faults=Faults(max_concurrent_requests=1, retry_after=3, latency_ms=400)
    )

    def login_request(session: requests.Session) -> requests.Response:
        return session.post(
            f"{simulator.url}/v1/sts/login/services",
            json={"clientKey": DEFAULT_CLIENT_KEY, "clientSecret": DEFAULT_CLIENT_SECRET},
            timeout=10,
        )

    replies = at_once(3, login_request)

    assert Counter(reply.status_code for reply in replies) == {200: 1, 429: 2}
    assert {reply.headers.get("Retry-After") for reply in replies if reply.status_code == 429} == {"3"}
    assert requests.get(f"{simulator.url}/_simulator/stats", timeout=10).status_code == 200  # never limited


def test_the_cli_shortcut_flags_set_the_faults() -> None:
    parser = _build_parser()
    args = parser.parse_args(
        [
            "--latency-ms",
            "25",
            "--max-concurrent-requests",
            "3",
            "--unauthorized-burst",
            "2",
            "--unauthorized-burst-rate",
            "0.25",
            "--expired-token-403",
            "--persistent-401",
            "--fault",
            "retry_after=2",
        ]
    )
    assert _faults_from(args) == Faults(
        latency_ms=25,
        max_concurrent_requests=3,
        unauthorized_burst=2,
        unauthorized_burst_rate=0.25,
        expired_token_403=True,
        persistent_401=True,
        retry_after=2,
    )
    assert _faults_from(parser.parse_args([])) == Faults()
    with pytest.raises(ValueError, match="latency_ms"):
        _faults_from(parser.parse_args(["--latency-ms", "5", "--fault", "latency_ms=3"]))


def simulator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow_provider_cloud4wi.testing.simulator", *args]


def subprocess_env() -> dict[str, str]:
    root = str(Path(airflow_provider_cloud4wi.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def test_the_cli_documents_the_flags_and_serves_with_them() -> None:
    help_text = subprocess.run(
        simulator_command("--help"),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=True,
    ).stdout
    for flag in (
        "--latency-ms",
        "--max-concurrent-requests",
        "--unauthorized-burst",
        "--unauthorized-burst-rate",
        "--expired-token-403",
        "--persistent-401",
    ):
        assert flag in help_text
    process = subprocess.Popen(
        simulator_command(
            "--port", "0", "--latency-ms", "5", "--max-concurrent-requests", "4", "--persistent-401"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the simulator did not announce itself"
        match = re.fullmatch(r"Cloud4Wi simulator listening on (http://\S+)\n", process.stdout.readline())
        assert match
        faults = requests.get(f"{match.group(1)}/_simulator/faults", timeout=10).json()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert (faults["latency_ms"], faults["max_concurrent_requests"], faults["persistent_401"]) == (5, 4, True)
