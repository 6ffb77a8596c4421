"""Behaviour of the Cloud4Wi Explore API simulator, exercised over real HTTP with ``requests``."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

import airflow_provider_cloud4wi
from airflow_provider_cloud4wi.testing import Cloud4WiSimulator, Faults, SimulatorConfig
from airflow_provider_cloud4wi.testing.pytest_plugin import SimulatorFactory
from airflow_provider_cloud4wi.testing.simulator import (
    DEFAULT_CLIENT_KEY,
    DEFAULT_CLIENT_SECRET,
    EVENT_TYPES,
)

pytest_plugins = ["airflow_provider_cloud4wi.testing.pytest_plugin"]

UTC = dt.timezone.utc
DAY_START = dt.datetime(2024, 1, 2, tzinfo=UTC)
DAY_END = dt.datetime(2024, 1, 3, tzinfo=UTC)
DAY_QUERY = {"dateStart": "2024-01-02T00:00:00Z", "dateEnd": "2024-01-02T23:59:59Z"}
OTHER_ORGANIZATION = "0123456789abcdef0123456789abcdef"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
API_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class ApiClient:
    """A deliberately naive client of the simulator: no retries, one session."""

    def __init__(self, simulator: Cloud4WiSimulator) -> None:
        self.simulator = simulator
        self.session = requests.Session()
        self.token: str | None = None

    def login(self, key: str = DEFAULT_CLIENT_KEY, secret: str = DEFAULT_CLIENT_SECRET) -> requests.Response:
        response = self.session.post(
            f"{self.simulator.url}/v1/sts/login/services",
            json={"clientKey": key, "clientSecret": secret},
            timeout=10,
        )
        if response.status_code == 200:
            self.token = response.json()["token"]
        return response

    def logout(self) -> requests.Response:
        return self.session.post(f"{self.simulator.url}/v1/sts/logout", headers=self._auth(), timeout=10)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(
            f"{self.simulator.url}{path}", params=params, headers=self._auth(), timeout=10
        )

    def events(self, organization: str | None = None, **params: Any) -> requests.Response:
        return self.get(
            f"/v1/organizations/{organization or self.simulator.organization_id}/events", **params
        )

    def customer_events(self, customer_id: str, **params: Any) -> requests.Response:
        path = f"/v1/organizations/{self.simulator.organization_id}/customers/{customer_id}/events"
        return self.get(path, **params)

    def scroll_all(self, **params: Any) -> list[dict[str, Any]]:
        """Every event of a scroll, asserting each page is well formed."""
        body = ok(self.events(enableScroll="true", **params))
        events = list(body["events"])
        while body["count"]:
            body = ok(self.events(scrollId=body["scrollId"]))
            events += body["events"]
        return events


def ok(response: requests.Response) -> dict[str, Any]:
    """The JSON of a 200 events reply, checked for the documented envelope."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK"
    assert API_DATE.match(body["generated"])
    assert body["count"] == len(body["events"])
    return body


def error(response: requests.Response, status: int) -> str:
    """The message of an error reply with the given status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR"
    return str(body["message"])


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["event"]["id"] for event in events]


def expected_day(simulator: Cloud4WiSimulator, **filters: Any) -> list[dict[str, Any]]:
    return list(simulator.expected_events(DAY_START, DAY_END, **filters))


@pytest.fixture
def api(cloud4wi_simulator: Cloud4WiSimulator) -> ApiClient:
    client = ApiClient(cloud4wi_simulator)
    assert client.login().status_code == 200
    return client


def started(factory: SimulatorFactory, **overrides: Any) -> tuple[Cloud4WiSimulator, ApiClient]:
    simulator = factory(**overrides)
    client = ApiClient(simulator)
    assert client.login().status_code == 200
    return simulator, client


# -- authentication -------------------------------------------------------------------------------


def test_login_returns_a_jwt_in_the_body_and_the_authorization_header(
    cloud4wi_simulator: Cloud4WiSimulator,
) -> None:
    response = ApiClient(cloud4wi_simulator).login()

    token = response.json()["token"]
    assert response.headers["Authorization"] == f"Bearer {token}"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == DEFAULT_CLIENT_KEY
    assert claims["org"] == cloud4wi_simulator.organization_id
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["jti"]


def test_each_login_issues_a_token_with_its_own_jti(cloud4wi_simulator: Cloud4WiSimulator) -> None:
    client = ApiClient(cloud4wi_simulator)
    jtis = {
        jwt.decode(client.login().json()["token"], options={"verify_signature": False})["jti"]
        for _ in range(3)
    }
    assert len(jtis) == 3


def test_login_with_a_wrong_secret_is_rejected_with_401(cloud4wi_simulator: Cloud4WiSimulator) -> None:
    response = ApiClient(cloud4wi_simulator).login(secret="not-the-secret")
    assert error(response, 401) == "invalid client credentials"
    assert cloud4wi_simulator.stats["login_failures"] == 1


def test_paths_with_the_docs_double_slash_prefix_are_served(api: ApiClient) -> None:
    login = api.session.post(
        f"{api.simulator.url}//v1/sts/login/services",
        json={"clientKey": DEFAULT_CLIENT_KEY, "clientSecret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    )
    assert login.status_code == 200
    body = ok(api.get(f"//v1/organizations/{api.simulator.organization_id}/events", size=2))
    assert body["count"] == 2


def test_logout_revokes_the_token(api: ApiClient) -> None:
    assert api.events(size=1).status_code == 200

    assert api.logout().json() == {"status": "OK"}

    assert error(api.events(size=1), 401) == "token revoked"
    assert api.simulator.stats["logouts"] == 1


def test_events_without_a_bearer_token_are_rejected_with_401(cloud4wi_simulator: Cloud4WiSimulator) -> None:
    assert error(ApiClient(cloud4wi_simulator).events(), 401) == "missing bearer token"


def test_a_token_signed_with_another_key_is_rejected_with_401(api: ApiClient) -> None:
    api.token = jwt.encode({"sub": "x", "org": api.simulator.organization_id}, "k" * 64, algorithm="HS256")
    assert error(api.events(), 401) == "invalid token"


def test_an_expired_token_is_rejected_with_401(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator = cloud4wi_simulator_factory(jwt_secret="s" * 64)
    client = ApiClient(simulator)
    now = int(time.time())
    claims = {"sub": DEFAULT_CLIENT_KEY, "org": simulator.organization_id, "jti": "old"}
    client.token = jwt.encode({**claims, "iat": now - 100, "exp": now - 10}, "s" * 64, algorithm="HS256")

    assert error(client.events(), 401) == "token expired"


def test_another_organization_is_forbidden_with_403(api: ApiClient) -> None:
    message = error(api.events(organization=OTHER_ORGANIZATION), 403)
    assert OTHER_ORGANIZATION in message


def test_an_unknown_customer_gets_404_naming_it(api: ApiClient) -> None:
    assert error(api.customer_events("f" * 32), 404) == f"customer {'f' * 32} not found"


def test_an_unknown_path_gets_404(api: ApiClient) -> None:
    assert api.get("/v1/organizations").status_code == 404
    assert api.get(f"/v2/organizations/{api.simulator.organization_id}/events").status_code == 404


# -- parameter validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02T00:00:00",
        "2024-01-02T00:00:00.000Z",
        "2024-01-02 00:00:00Z",
        "2024-01-02T00:00:00+00:00",
        "2024-13-02T00:00:00Z",
        "yesterday",
    ],
)
@pytest.mark.parametrize("name", ["dateStart", "dateEnd"])
def test_a_date_not_in_whole_second_zulu_format_is_a_400_naming_the_parameter(
    api: ApiClient, name: str, value: str
) -> None:
    assert name in error(api.events(**{name: value}), 400)


@pytest.mark.parametrize("size", ["0", "10001", "-5", "ten", "1.5"])
def test_a_size_outside_1_to_10000_is_a_400(api: ApiClient, size: str) -> None:
    assert "size" in error(api.events(size=size), 400)


def test_an_unknown_event_type_is_a_400(api: ApiClient) -> None:
    assert "teleport" in error(api.events(events="login,teleport"), 400)


def test_a_start_after_the_end_is_a_400(api: ApiClient) -> None:
    assert "dateStart" in error(
        api.events(dateStart="2024-01-03T00:00:00Z", dateEnd="2024-01-02T00:00:00Z"), 400
    )


def test_the_size_cannot_change_during_a_scroll_and_the_refusal_keeps_the_cursor(api: ApiClient) -> None:
    expected = ids(expected_day(api.simulator))
    first = ok(api.events(enableScroll="true", size=50, sortBy="utcTime", **DAY_QUERY))

    assert error(api.events(scrollId=first["scrollId"], size=60), 400) == "size cannot change during a scroll"

    same_size = ok(api.events(scrollId=first["scrollId"], size=50))
    assert ids(same_size["events"]) == expected[50:100]


def test_a_continuation_ignores_every_parameter_but_size(api: ApiClient) -> None:
    expected = ids(expected_day(api.simulator))
    first = ok(api.events(enableScroll="true", size=40, sortBy="utcTime", **DAY_QUERY))

    page = ok(api.events(scrollId=first["scrollId"], dateStart="garbage", events="teleport", sortBy="nope"))

    assert ids(page["events"]) == expected[40:80]


# -- the timeline -------------------------------------------------------------------------------------


def test_both_date_bounds_are_inclusive_to_the_second(api: ApiClient) -> None:
    # at 120 events per hour the bursts of 3 are 90 seconds apart: 00:00:00, 00:01:30, ...
    both = ok(api.events(sortBy="utcTime", dateStart="2024-01-02T00:00:00Z", dateEnd="2024-01-02T00:01:30Z"))
    one_second_less = ok(
        api.events(sortBy="utcTime", dateStart="2024-01-02T00:00:00Z", dateEnd="2024-01-02T00:01:29Z")
    )

    assert [e["when"]["createdAt"] for e in both["events"]] == ["2024-01-02T00:00:00Z"] * 3 + [
        "2024-01-02T00:01:30Z"
    ] * 3
    assert both["events"][:3] == one_second_less["events"]


@pytest.mark.parametrize("hour", ["00", "07", "23"])
def test_a_burst_lands_exactly_on_every_hour_boundary(api: ApiClient, hour: str) -> None:
    instant = f"2024-01-03T{hour}:00:00Z"
    body = ok(api.events(dateStart=instant, dateEnd=instant))
    assert body["count"] == 3
    assert {event["when"]["createdAt"] for event in body["events"]} == {instant}


def test_several_events_share_each_burst_second(api: ApiClient) -> None:
    body = ok(api.events(size=10000, **DAY_QUERY))
    per_second = Counter(event["when"]["createdAt"] for event in body["events"])
    assert set(per_second.values()) == {3}
    assert len(per_second) == 24 * 40


@pytest.mark.parametrize("rate", [3, 120, 600])
def test_every_hour_holds_exactly_events_per_hour_events(
    cloud4wi_simulator_factory: SimulatorFactory, rate: int
) -> None:
    _, client = started(cloud4wi_simulator_factory, events_per_hour=rate)
    body = ok(client.events(size=10000, dateStart="2024-01-05T13:00:00Z", dateEnd="2024-01-05T13:59:59Z"))
    assert body["count"] == rate


def test_events_per_hour_must_be_a_multiple_of_three() -> None:
    with pytest.raises(ValueError, match="multiple of 3"):
        SimulatorConfig(events_per_hour=100)


def test_the_data_range_is_half_open(api: ApiClient) -> None:
    body = ok(api.events(dateStart="2024-01-07T23:59:00Z", dateEnd="2024-01-08T00:00:00Z"))
    assert body["count"] == 0  # the last burst of the week is at 23:58:30, nothing at data_end


# -- scrolling ------------------------------------------------------------------------------------------


def test_scrolling_a_day_to_the_end_yields_exactly_the_expected_events(api: ApiClient) -> None:
    events = api.scroll_all(size=500, sortBy="utcTime", **DAY_QUERY)
    assert events == expected_day(api.simulator)
    assert len(events) == 24 * 120


def test_each_continuation_returns_the_next_size_events(api: ApiClient) -> None:
    expected = ids(expected_day(api.simulator))
    first = ok(api.events(enableScroll="true", size=7, sortBy="utcTime", **DAY_QUERY))
    second = ok(api.events(scrollId=first["scrollId"]))
    third = ok(api.events(scrollId=first["scrollId"]))
    assert [ids(page["events"]) for page in (first, second, third)] == [
        expected[0:7],
        expected[7:14],
        expected[14:21],
    ]
    assert first["scrollId"] == second["scrollId"] == third["scrollId"]


def test_an_empty_page_ends_the_scroll_and_later_continuations_stay_empty(api: ApiClient) -> None:
    first = ok(
        api.events(
            enableScroll="true", size=4, dateStart="2024-01-02T00:00:00Z", dateEnd="2024-01-02T00:01:30Z"
        )
    )
    second = ok(api.events(scrollId=first["scrollId"]))
    end = ok(api.events(scrollId=first["scrollId"]))
    again = ok(api.events(scrollId=first["scrollId"]))

    assert [first["count"], second["count"], end["count"], again["count"]] == [4, 2, 0, 0]
    assert end["events"] == []
    assert end["scrollId"] == first["scrollId"]


def test_a_scroll_expires_after_its_ttl_without_use(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory, scroll_ttl=0.3)
    first = ok(client.events(enableScroll="true", size=10))
    time.sleep(0.2)
    ok(client.events(scrollId=first["scrollId"]))  # a use renews the ttl
    time.sleep(0.2)
    ok(client.events(scrollId=first["scrollId"]))
    time.sleep(0.45)

    assert error(client.events(scrollId=first["scrollId"]), 404) == "scrollId not found or expired"
    assert simulator.stats["scrolls_expired"] == 1


def test_an_unknown_scroll_id_gets_404(api: ApiClient) -> None:
    assert error(api.events(scrollId="bm90LWEtc2Nyb2xs"), 404) == "scrollId not found or expired"


def test_a_request_without_enable_scroll_returns_no_scroll_id(api: ApiClient) -> None:
    body = ok(api.events(size=5))
    assert "scrollId" not in body
    assert body["count"] == 5


# -- sorting --------------------------------------------------------------------------------------------


def local_key(event: dict[str, Any]) -> tuple[str, str]:
    return event["when"]["createdAtLocal"], event["event"]["id"]


def test_business_time_is_the_default_order_local_time_then_id(api: ApiClient) -> None:
    events = ok(api.events(size=10000, **DAY_QUERY))["events"]
    assert [local_key(e) for e in events] == sorted(local_key(e) for e in events)
    assert sorted(ids(events)) == sorted(ids(expected_day(api.simulator)))


def test_utc_time_orders_by_created_at(api: ApiClient) -> None:
    events = ok(api.events(size=10000, sortBy="utcTime", **DAY_QUERY))["events"]
    assert events == expected_day(api.simulator)
    created = [e["when"]["createdAt"] for e in events]
    assert created == sorted(created)


def test_business_time_and_utc_time_orders_differ(api: ApiClient) -> None:
    business = ok(api.events(size=300, **DAY_QUERY))["events"]
    utc = ok(api.events(size=300, sortBy="utcTime", **DAY_QUERY))["events"]
    assert ids(business) != ids(utc)
    assert len({e["when"]["timezone"] for e in utc}) >= 5


@pytest.mark.parametrize("sort_by", ["utcTime", "businessTime"])
def test_sort_reverse_serves_the_same_events_backwards(api: ApiClient, sort_by: str) -> None:
    forward = ok(api.events(size=10000, sortBy=sort_by, **DAY_QUERY))["events"]
    backward = ok(api.events(size=10000, sortBy=sort_by, sortReverse="true", **DAY_QUERY))["events"]
    assert backward == forward[::-1]


def test_business_time_order_holds_across_a_daylight_saving_fall_back(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    _, client = started(
        cloud4wi_simulator_factory,
        data_start=dt.datetime(2024, 11, 2, tzinfo=UTC),
        data_end=dt.datetime(2024, 11, 5, tzinfo=UTC),
    )
    window: dict[str, Any] = {
        "dateStart": "2024-11-03T00:00:00Z",
        "dateEnd": "2024-11-03T12:00:00Z",
        "size": 10000,
    }
    business = ok(client.events(**window))["events"]
    utc = ok(client.events(sortBy="utcTime", **window))["events"]

    new_york = [e for e in utc if e["when"]["timezone"] == "America/New_York"]
    # 01:xx local happens twice on that night: local time goes backwards in UTC order
    assert any(
        a["when"]["createdAtLocal"] > b["when"]["createdAtLocal"] for a, b in itertools.pairwise(new_york)
    )
    assert [local_key(e) for e in business] == sorted(local_key(e) for e in business)
    assert sorted(ids(business)) == sorted(ids(utc))


@pytest.mark.parametrize(
    ("overrides", "window", "params"),
    [
        ({"customers": 1}, ("2024-01-02T00:00:00Z", "2024-01-02T08:00:00Z"), {}),
        ({"customers": 3}, ("2024-01-02T00:00:00Z", "2024-01-02T23:59:59Z"), {"sortReverse": "true"}),
        ({"events_per_hour": 6000}, ("2024-01-02T10:00:00Z", "2024-01-02T11:00:00Z"), {}),
        ({}, ("2024-01-02T00:00:00Z", "2024-01-04T23:59:59Z"), {"events": "survey,signup"}),
        (
            {
                "data_start": dt.datetime(2024, 4, 5, tzinfo=UTC),
                "data_end": dt.datetime(2024, 4, 8, tzinfo=UTC),
            },
            ("2024-04-06T00:00:00Z", "2024-04-07T23:59:59Z"),
            {},
        ),
    ],
    ids=["one-customer", "fewer-customers-than-zones", "high-rate", "type-filter", "sydney-dst-end"],
)
def test_business_time_order_equals_a_full_sort_of_the_window(
    cloud4wi_simulator_factory: SimulatorFactory,
    overrides: dict[str, Any],
    window: tuple[str, str],
    params: dict[str, str],
) -> None:
    simulator, client = started(cloud4wi_simulator_factory, **overrides)
    served = ok(client.events(size=10000, dateStart=window[0], dateEnd=window[1], **params))["events"]

    start = dt.datetime.fromisoformat(window[0].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window[1].replace("Z", "+00:00")) + dt.timedelta(seconds=1)
    types = params["events"].split(",") if "events" in params else None
    expected = sorted(
        simulator.expected_events(start, end, event_types=types),
        key=local_key,
        reverse=params.get("sortReverse") == "true",
    )
    assert served == expected
    assert 0 < len(served) < 10000


# -- customers, types and documents -----------------------------------------------------------------------


def test_the_customer_endpoint_serves_only_that_customers_events_and_never_a_scroll_id(
    api: ApiClient,
) -> None:
    customer = api.simulator.customer_ids()[7]
    body = ok(api.customer_events(customer, size=10000, sortBy="utcTime", enableScroll="true", **DAY_QUERY))

    assert "scrollId" not in body
    assert body["events"] == expected_day(api.simulator, customer_id=customer)
    assert {event["customerId"] for event in body["events"]} == {customer}
    assert body["count"] == api.simulator.count_events(DAY_START, DAY_END, customer_id=customer) > 0


def test_the_events_parameter_filters_by_type(api: ApiClient) -> None:
    body = ok(api.events(size=10000, sortBy="utcTime", events="geo_visit,signup", **DAY_QUERY))
    assert body["events"] == expected_day(api.simulator, event_types=["geo_visit", "signup"])
    assert {event["event"]["type"] for event in body["events"]} == {"geo_visit", "signup"}


def test_customer_ids_lists_every_distinct_customer(cloud4wi_simulator: Cloud4WiSimulator) -> None:
    customers = cloud4wi_simulator.customer_ids()
    assert len(set(customers)) == len(customers) == 50
    assert all(HEX32.match(customer) for customer in customers)


def test_documents_have_the_shape_of_the_docs_data_example(api: ApiClient) -> None:
    events = ok(api.events(size=10000, **DAY_QUERY))["events"]

    assert {event["event"]["type"] for event in events} == set(EVENT_TYPES)
    assert len(set(ids(events))) == len(events)
    for event in events:
        geo = event["event"]["type"].startswith("geo_")
        assert HEX32.match(event["customerId"])
        assert re.match(r"^[0-9a-f]{32}[gl]$", event["event"]["id"])
        assert event["event"]["id"][-1] == ("g" if geo else "l")
        assert set(event["when"]) == {"createdAt", "createdAtLocal", "timezone"}
        assert API_DATE.match(event["when"]["createdAt"])
        assert API_DATE.match(event["when"]["createdAtLocal"])
        if event["event"]["type"] in ("visit", "geo_visit", "geo_arriving"):
            assert event["event"]["visit"]["timezone"] == event["when"]["timezone"]
        if geo:
            assert {"geofenceName", "geofenceId", "geofenceJSON"} <= set(event["where"])
        else:
            assert event["organizationId"] == api.simulator.organization_id
            assert {"locationId", "locationName"} <= set(event["where"])


def test_geo_events_have_no_organization_id(api: ApiClient) -> None:
    events = ok(api.events(size=10000, events="geo_visit,geo_arriving", **DAY_QUERY))["events"]
    assert events
    assert all("organizationId" not in event for event in events)


def test_location_names_keep_their_unicode(api: ApiClient) -> None:
    events = ok(api.events(size=10000, **DAY_QUERY))["events"]
    names = {event["where"].get("locationName") for event in events}
    assert {"Caffè Torino", "Café Zürich", "東京 Shibuya", "Ünïcødé Straße"} <= names


def test_visits_start_before_they_are_recorded(api: ApiClient) -> None:
    visits = ok(api.events(size=10000, events="visit", **DAY_QUERY))["events"]
    for event in visits:
        visit = event["event"]["visit"]
        assert visit["startAt"] < event["when"]["createdAt"]
        assert visit["duration"] >= 1


# -- the ground truth API -------------------------------------------------------------------------------


def test_expected_events_is_a_half_open_window_that_accepts_microseconds(
    cloud4wi_simulator: Cloud4WiSimulator,
) -> None:
    sim = cloud4wi_simulator
    burst = dt.datetime(2024, 1, 2, 0, 1, 30, tzinfo=UTC)

    assert sim.count_events(burst, burst + dt.timedelta(microseconds=1)) == 3
    assert sim.count_events(burst - dt.timedelta(microseconds=1), burst) == 0
    assert sim.count_events(burst + dt.timedelta(microseconds=1), burst + dt.timedelta(seconds=90)) == 0
    assert [e["when"]["createdAt"] for e in sim.expected_events(burst, burst + dt.timedelta(seconds=91))] == [
        "2024-01-02T00:01:30Z"
    ] * 3 + ["2024-01-02T00:03:00Z"] * 3


def test_expected_events_rejects_naive_datetimes(cloud4wi_simulator: Cloud4WiSimulator) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cloud4wi_simulator.count_events(dt.datetime(2024, 1, 2), DAY_END)


def test_count_events_matches_expected_events_with_every_filter(
    cloud4wi_simulator: Cloud4WiSimulator,
) -> None:
    sim = cloud4wi_simulator
    customer = sim.customer_ids()[3]
    for filters in (
        {},
        {"customer_id": customer},
        {"event_types": ["login"]},
        {"customer_id": customer, "event_types": ["login", "visit"]},
    ):
        assert sim.count_events(DAY_START, DAY_END, **filters) == len(expected_day(sim, **filters))


def test_the_same_seed_serves_the_same_events_and_another_seed_does_not(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    pages = []
    for seed in (11, 11, 12):
        _, client = started(cloud4wi_simulator_factory, seed=seed)
        pages.append(ok(client.events(size=200, **DAY_QUERY))["events"])
    assert pages[0] == pages[1]
    assert ids(pages[0]) != ids(pages[2])


def test_a_million_event_window_is_served_without_materialising_it(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(
        cloud4wi_simulator_factory,
        events_per_hour=36000,
        data_end=dt.datetime(2024, 1, 3, 4, tzinfo=UTC),
    )
    window = (simulator.config.data_start, simulator.config.data_end)
    begin = time.perf_counter()

    assert simulator.count_events(*window) == 52 * 36000
    first = ok(client.events(enableScroll="true", size=10000, sortBy="utcTime"))
    last = ok(client.events(size=3, sortBy="utcTime", sortReverse="true"))

    assert time.perf_counter() - begin < 5
    assert first["count"] == 10000
    assert first["events"][:5] == list(itertools.islice(simulator.expected_events(*window), 5))
    assert last["events"][0]["when"]["createdAt"] == "2024-01-03T03:59:59Z"


# -- faults ---------------------------------------------------------------------------------------------


def always(**rates: Any) -> Faults:
    """Faults that hit every eligible request (no cap on runs)."""
    return Faults(max_consecutive_faults=1000, **rates)


def test_rate_limit_replies_429_half_with_retry_after(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.set_faults(always(rate_limit=1.0, retry_after=2))

    replies = [client.events(size=1) for _ in range(16)]

    assert {reply.status_code for reply in replies} == {429}
    assert {reply.headers.get("Retry-After") for reply in replies} == {"2", None}
    assert all(reply.json()["status"] == "ERROR" for reply in replies)
    assert simulator.stats["faults"]["rate_limit"] == 16


def test_server_errors_are_500_502_or_503_with_json_or_html_bodies(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.faults = always(server_error=1.0)

    replies = [client.events(size=1) for _ in range(24)]

    assert {reply.status_code for reply in replies} == {500, 502, 503}
    kinds = {reply.headers["Content-Type"].split(";")[0] for reply in replies}
    assert kinds == {"application/json", "text/html"}


def test_faults_also_hit_login(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator = cloud4wi_simulator_factory(faults=always(rate_limit=1.0))
    assert ApiClient(simulator).login().status_code == 429


def open_scroll(client: ApiClient, size: int = 100) -> tuple[str, list[str]]:
    """Open a utcTime scroll over the test day; returns its id and the expected ids."""
    first = ok(client.events(enableScroll="true", size=size, sortBy="utcTime", **DAY_QUERY))
    expected = ids(expected_day(client.simulator))
    assert ids(first["events"]) == expected[:size]
    return first["scrollId"], expected


def test_a_connection_reset_sends_no_reply_and_keeps_the_cursor(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    scroll_id, expected = open_scroll(client)
    simulator.set_faults(Faults(connection_reset=1.0, max_consecutive_faults=1))

    with pytest.raises(requests.ConnectionError):
        client.events(scrollId=scroll_id)
    retried = ok(client.events(scrollId=scroll_id))

    assert ids(retried["events"]) == expected[100:200]
    assert simulator.stats["faults"]["connection_reset"] == 1


def test_a_truncated_body_breaks_the_reply_and_moves_the_cursor(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    scroll_id, expected = open_scroll(client)
    simulator.set_faults(Faults(truncated_body=1.0, max_consecutive_faults=1))

    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        client.events(scrollId=scroll_id)
    after = ok(client.events(scrollId=scroll_id))

    assert ids(after["events"]) == expected[200:300]


def test_a_lost_reply_moves_the_cursor_without_answering(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    scroll_id, expected = open_scroll(client)
    simulator.set_faults(Faults(lost_reply=1.0, max_consecutive_faults=1))

    with pytest.raises(requests.ConnectionError):
        client.events(scrollId=scroll_id)
    after = ok(client.events(scrollId=scroll_id))

    assert ids(after["events"]) == expected[200:300]
    assert simulator.stats["faults"]["lost_reply"] == 1


def test_lost_replies_only_hit_continuations(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.set_faults(always(lost_reply=1.0))
    assert ok(client.events(enableScroll="true", size=5))["count"] == 5


def test_a_spurious_401_revokes_the_token_but_never_hits_a_fresh_one(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator = cloud4wi_simulator_factory(faults=always(spurious_401=1.0))
    client = ApiClient(simulator)
    client.login()

    statuses = [client.events(size=1).status_code for _ in range(3)]
    client.login()
    after_login = client.events(size=1).status_code

    assert statuses == [200, 401, 401]  # the third one: the token really is revoked now
    assert after_login == 200
    assert simulator.stats["faults"]["spurious_401"] == 1


def test_duplicates_repeat_the_end_of_the_previous_page(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    scroll_id, expected = open_scroll(client, size=100)
    simulator.set_faults(always(duplicates=1.0))
    seen = expected[:100]
    previous = expected[:100]
    repeats = []

    while True:
        page = ids(ok(client.events(scrollId=scroll_id))["events"])
        if not page:
            break
        assert len(page) <= 100
        overlap = next(n for n in range(len(page) + 1) if n == len(page) or page[n] not in previous)
        assert 1 <= overlap <= 3
        assert page[:overlap] == previous[len(previous) - overlap :]
        repeats.append(overlap)
        seen += page[overlap:]
        previous = page

    assert seen == expected
    assert simulator.stats["faults"]["duplicates"] == len(repeats)


def test_the_scroll_expiry_fault_drops_the_scroll(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    scroll_id, _ = open_scroll(client)
    simulator.set_faults(Faults(scroll_expiry=1.0, max_consecutive_faults=1))

    assert error(client.events(scrollId=scroll_id), 404) == "scrollId not found or expired"
    assert error(client.events(scrollId=scroll_id), 404) == "scrollId not found or expired"
    assert simulator.stats["faults"]["scroll_expiry"] == 1


def test_expire_every_continuation_ignores_the_cap_on_consecutive_faults(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.set_faults(Faults(expire_every_continuation=True, max_consecutive_faults=1))

    for _ in range(3):
        scroll_id = ok(client.events(enableScroll="true", size=10))["scrollId"]
        assert error(client.events(scrollId=scroll_id), 404) == "scrollId not found or expired"


def test_latency_delays_every_request(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.set_faults(Faults(latency_ms=150))
    begin = time.perf_counter()
    ok(client.events(size=1))
    assert time.perf_counter() - begin >= 0.15


def test_no_more_than_max_consecutive_faults_are_injected_in_a_row(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    simulator.set_faults(Faults(rate_limit=1.0, max_consecutive_faults=3))

    statuses = [client.events(size=1).status_code for _ in range(8)]

    assert statuses == [429, 429, 429, 200, 429, 429, 429, 200]


def test_faults_are_deterministic_for_a_seed(cloud4wi_simulator_factory: SimulatorFactory) -> None:
    runs = []
    for seed in (5, 5, 6):
        simulator, client = started(cloud4wi_simulator_factory, seed=seed)
        simulator.set_faults(always(rate_limit=0.5))
        runs.append([client.events(size=1).status_code for _ in range(24)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert set(runs[0]) == {200, 429}


def test_faults_can_be_switched_over_http_and_stats_read_back(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory)
    control = f"{simulator.url}/_simulator"

    reply = requests.post(
        f"{control}/faults", json={"rate_limit": 1.0, "max_consecutive_faults": 2}, timeout=10
    )
    statuses = [client.events(size=1).status_code for _ in range(3)]
    stats = requests.get(f"{control}/stats", timeout=10).json()

    assert reply.json()["rate_limit"] == 1.0
    assert simulator.faults == Faults(rate_limit=1.0, max_consecutive_faults=2)
    assert statuses == [429, 429, 200]
    assert stats["faults"]["rate_limit"] == 2
    assert stats["requests"]["organization_events"] == 3
    assert stats["logins"] == 1
    assert requests.post(f"{control}/faults", json={"teleport": 1}, timeout=10).status_code == 400
    assert requests.post(f"{control}/faults", json={"rate_limit": 2}, timeout=10).status_code == 400


def test_stats_count_scrolls_pages_and_events(api: ApiClient) -> None:
    api.scroll_all(size=1000, **DAY_QUERY)
    stats = api.simulator.stats
    assert stats["scrolls_opened"] == 1
    assert stats["events_served"] == 2880
    assert stats["pages_served"] == 4  # 1000 + 1000 + 880 + the empty end page


# -- page cache, life cycle, fixtures, CLI ------------------------------------------------------------------


def test_the_page_cache_serves_a_repeated_pull_from_memory(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    simulator, client = started(cloud4wi_simulator_factory, page_cache_bytes=64 * 1024 * 1024)
    first = client.scroll_all(size=700, **DAY_QUERY)
    hits_before = simulator.stats["page_cache"]["hits"]

    second = client.scroll_all(size=700, **DAY_QUERY)

    assert second == first
    assert simulator.stats["page_cache"]["hits"] - hits_before == 6  # 5 pages and the empty end page


def test_stop_closes_kept_alive_connections_and_frees_the_port() -> None:
    simulator = Cloud4WiSimulator().start()
    client = ApiClient(simulator)
    assert client.login().status_code == 200
    port = simulator.port

    simulator.stop()

    with pytest.raises(requests.ConnectionError):
        client.events(size=1)
    with Cloud4WiSimulator(port=port) as again:
        assert again.url.endswith(f":{port}")


def test_the_factory_starts_independent_simulators_with_overrides(
    cloud4wi_simulator_factory: SimulatorFactory,
) -> None:
    first = cloud4wi_simulator_factory(organization_id="a" * 32)
    second = cloud4wi_simulator_factory(SimulatorConfig(client_key="other"), seed=9)
    assert first.url != second.url
    assert ApiClient(second).login(key="other").status_code == 200
    token = ApiClient(first).login()
    assert jwt.decode(token.json()["token"], options={"verify_signature": False})["org"] == "a" * 32


def simulator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow_provider_cloud4wi.testing.simulator", *args]


def subprocess_env() -> dict[str, str]:
    root = str(Path(airflow_provider_cloud4wi.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def test_the_cli_help_lists_its_options() -> None:
    result = subprocess.run(
        simulator_command("--help"),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=True,
    )
    for option in ("--port", "--seed", "--events-per-hour", "--page-cache-mb", "--fault"):
        assert option in result.stdout


def test_the_cli_announces_its_url_serves_and_exits_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        simulator_command("--port", "0", "--seed", "4", "--client-key", "cli", "--fault", "latency_ms=1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the simulator did not announce itself"
        line = process.stdout.readline()
        match = re.fullmatch(r"Cloud4Wi simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        login = requests.post(
            f"{match.group(1)}/v1/sts/login/services",
            json={"clientKey": "cli", "clientSecret": DEFAULT_CLIENT_SECRET},
            timeout=10,
        )
        assert login.status_code == 200
        faults = requests.get(f"{match.group(1)}/_simulator/faults", timeout=10).json()
        assert faults["latency_ms"] == 1

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert stdout == ""
    assert stderr == ""  # quiet unless --verbose


def test_the_cli_refuses_a_rate_that_is_not_a_multiple_of_three() -> None:
    result = subprocess.run(
        simulator_command("--port", "0", "--events-per-hour", "100"),
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "multiple of 3" in result.stderr
