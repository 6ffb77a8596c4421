"""
The Cloud4Wi connection form in Airflow 3's UI, driven in headless Chromium.

Airflow's api-server (simple auth manager, one admin user, ``[core] test_connection = Enabled``)
serves the React UI; selenium drives Debian's Chromium through its packaged chromedriver. The test
logs in, adds a connection of type Cloud4Wi, sees the form relabelled with the irrelevant fields
hidden, saves it, and presses Test: against the simulator with the right secret, then with a
wrong one. Every step leaves a screenshot in the test's ``screenshots/`` directory.

Airflow 3.3's Test button (a row action of the connections list) posts the row's port as ``0``
when the connection has none, and the api-server then refuses to reuse the stored secret for "a
different port" (400 Bad Request). Cloud4Wi connections have no port (the field is hidden), so the
test stores port 0 through the REST API before pressing Test; the hook ignores the port.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_stack import airflow_major, answers, require_packages, wait_until

from airflow_provider_cloud4wi.testing import Cloud4WiSimulator
from devtools import system_packages
from devtools.airflow_stack import COMMANDS, AirflowProcesses, clean_environment
from devtools.servers import HOST, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.airflow3_only,
    pytest.mark.skipif(airflow_major() < 3, reason="The React UI and its connection form are Airflow 3's."),
]

USER = "admin"
PASSWORD = "cloud4wi-ui-test-password"
CONN_ID = "cloud4wi_ui"
STARTUP_TIMEOUT_SECONDS = 300.0
UI_TIMEOUT_SECONDS = 60.0
WINDOW = "1400,1000"
#: Labels Airflow gives the standard fields; the Cloud4Wi form must not show them.
DEFAULT_LABELS = ("Host", "Login", "Password", "Schema", "Port")


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[str]:
    """Airflow 3's api-server on SQLite with one admin user and the Test button on; its base URL."""
    home = tmp_path / "airflow"
    home.mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = {
        **clean_environment(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "cloud4wi-ui-test-jwt-secret",
        "AIRFLOW__API__SECRET_KEY": "cloud4wi-ui-test-secret-key",
    }
    airflow = AirflowProcesses(home=home, env=env)
    airflow.run("db-migrate", "db", "migrate")
    url = f"http://{HOST}:{port}"
    try:
        airflow.start("api-server", *COMMANDS["api-server"], "--host", HOST, "--port", str(port))
        wait_until(
            airflow, lambda: answers(f"{url}/api/v2/version"), "the api-server", STARTUP_TIMEOUT_SECONDS
        )
        yield url
    finally:
        airflow.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium from the distribution, through its packaged chromedriver."""
    require_packages(system_packages.CHROMIUM)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=system_packages.CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class ConnectionsPage:
    """The UI steps of the test, each waiting on what the user would see."""

    def __init__(self, driver: Any, base_url: str, screenshots: Path) -> None:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.screenshots = screenshots
        # React re-renders replace elements under a found reference: look them up again.
        self.wait = WebDriverWait(
            driver, UI_TIMEOUT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)
        )

    def shot(self, name: str) -> Path:
        """Save a screenshot of the current page as ``<name>.png``."""
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def visible(self, xpath: str) -> Any:
        """The element at ``xpath`` once it is visible (with the page source when it never is)."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        try:
            return self.wait.until(ec.visibility_of_element_located((By.XPATH, xpath)))
        except TimeoutException:
            (self.screenshots / "page-source.html").write_text(self.driver.page_source)
            self.shot("timeout")
            raise AssertionError(f"{xpath} never became visible; see {self.screenshots}") from None

    def click(self, xpath: str) -> None:
        """Click the element at ``xpath`` once it is visible, looking it up again if React replaced it."""
        from selenium.webdriver.common.by import By

        self.visible(xpath)

        def clicked(driver: Any) -> bool:
            element = driver.find_element(By.XPATH, xpath)
            if not element.is_enabled():
                return False
            element.click()
            return True

        self.wait.until(clicked)

    def labels(self) -> set[str]:
        """The text of every visible form label, required-field stars removed."""
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.TAG_NAME, "label")
        return {label.text.replace("*", "").strip() for label in found if label.is_displayed()} - {""}

    def inputs(self) -> set[str]:
        """The names of the form's inputs."""
        from selenium.webdriver.common.by import By

        return {
            str(element.get_attribute("name")) for element in self.driver.find_elements(By.TAG_NAME, "input")
        }

    def log_in(self) -> None:
        """Sign in through the simple auth manager's login page."""
        self.driver.get(f"{self.base_url}/auth/login")
        self.visible("//input[@name='username']").send_keys(USER)
        self.visible("//input[@name='password']").send_keys(PASSWORD)
        self.shot("01-login")
        self.click("//button[@type='submit']")
        self.visible("//*[normalize-space()='Admin']")

    def open_new_connection_form(self, conn_type: str) -> None:
        """Open Add Connection, give the id and pick ``conn_type`` in the type selector."""
        from selenium.webdriver.common.keys import Keys

        self.driver.get(f"{self.base_url}/connections")
        self.click("//button[normalize-space()='Add Connection']")
        self.visible("//input[@name='connection_id']").send_keys(CONN_ID)
        selector = self.visible("//input[@role='combobox']")
        selector.send_keys(conn_type)
        self.visible(f"//*[contains(@id, 'option') and normalize-space()='{conn_type}']")
        selector.send_keys(Keys.ENTER)
        self.visible("//input[@name='host']")

    def fill(self, name: str, value: str) -> None:
        """Replace the value of the input called ``name``."""
        from selenium.webdriver.common.keys import Keys

        field = self.visible(f"//input[@name='{name}']")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(value)

    def open_section(self, title: str, showing: str) -> None:
        """Unfold a section of the form ("Standard Fields", "Extra Fields") unless ``showing`` is visible."""
        from selenium.webdriver.common.by import By

        shown = [field for field in self.driver.find_elements(By.NAME, showing) if field.is_displayed()]
        if not shown:
            self.click(f"//button[normalize-space()='{title}']")

    def save(self) -> None:
        """Press Save and wait for the connections list to show the connection."""
        self.click("//button[normalize-space()='Save']")
        self.visible(f"//td[normalize-space()='{CONN_ID}']")

    def row_action(self, label: str) -> None:
        """Press one of the connection row's buttons ("Test Connection", "Edit Connection")."""
        self.driver.get(f"{self.base_url}/connections")
        self.click(f"//tr[.//td[normalize-space()='{CONN_ID}']]//button[@aria-label='{label}']")

    def toast(self) -> tuple[str, str]:
        """The title and description of the notification that appears next."""
        toast = "//*[@data-scope='toast' and @data-part='root']"
        title = self.visible(f"{toast}//*[@data-part='title']").text
        description = self.visible(f"{toast}//*[@data-part='description']").text
        return title, description


def api_token(base_url: str) -> str:
    """A REST API token for the admin user."""
    request = urllib.request.Request(
        f"{base_url}/auth/token",
        data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return str(json.load(reply)["access_token"])


def store_port_zero(base_url: str) -> None:
    """Give the stored connection the port the UI's Test button posts (see the module docstring)."""
    request = urllib.request.Request(
        f"{base_url}/api/v2/connections/{CONN_ID}?update_mask=port",
        data=json.dumps({"connection_id": CONN_ID, "conn_type": "cloud4wi", "port": 0}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_token(base_url)}"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert json.load(reply)["port"] == 0


def press_test(page: ConnectionsPage, base_url: str) -> tuple[str, str]:
    """Press the row's Test button; the notification it brings."""
    store_port_zero(base_url)
    page.row_action("Test Connection")
    return page.toast()


@pytest.fixture
def page(browser: Any, api_server: str, tmp_path: Path) -> ConnectionsPage:
    """The browser, pointed at the api-server, saving screenshots under the test's tmp dir."""
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    return ConnectionsPage(browser, api_server, screenshots)


def fill_connection(page: ConnectionsPage, simulator: Cloud4WiSimulator, secret: str) -> None:
    """Type the simulator's address and credentials into the standard fields."""
    page.fill("host", simulator.url)
    page.fill("login", simulator.config.client_key)
    page.fill("password", secret)


def test_the_connection_form_is_relabelled_and_test_reports_success_or_the_reason(
    page: ConnectionsPage, api_server: str, cloud4wi_simulator: Cloud4WiSimulator
) -> None:
    page.log_in()
    page.open_new_connection_form("Cloud4Wi")

    page.shot("02-cloud4wi-form")
    assert {"API base URL", "Client key", "Client secret"} <= page.labels()
    assert not page.labels() & set(DEFAULT_LABELS)
    assert not page.inputs() & {"schema", "port"}

    fill_connection(page, cloud4wi_simulator, cloud4wi_simulator.config.client_secret)
    page.open_section("Extra Fields", showing="element_organization_id")
    page.fill("element_organization_id", cloud4wi_simulator.organization_id)
    assert "Organization ID" in page.labels()
    page.shot("03-extra-fields")
    page.save()

    title, message = press_test(page, api_server)
    page.shot("04-test-succeeds")
    assert "Connected to" in message, (title, message)
    assert cloud4wi_simulator.organization_id in message

    page.row_action("Edit Connection")
    page.open_section("Standard Fields", showing="password")
    page.fill("password", "not-the-client-secret")
    page.save()
    title, message = press_test(page, api_server)
    page.shot("05-test-fails-with-the-reason")
    assert "Failed" in title, (title, message)
    assert "401" in message or "secret" in message.lower(), message
