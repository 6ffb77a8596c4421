"""docker-compose.yaml: valid Compose, and wired so the example DAGs find what they need.

Docker cannot run here, so these tests read the file: the Compose specification's JSON schema,
then the references between services that a typo would break silently until ``docker compose up``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devtools.airflow_stack import CELERY_WORKERS, COMMANDS, celery_environment

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
COMPOSE_SCHEMA = REPO.parent / "shared" / "reference" / "compose-spec.json"
EXAMPLE_DAGS = REPO / "example_dags"
AIRFLOW_COMMANDS = {" ".join(command) for command in COMMANDS.values()}
#: The Compose service of each component of devtools/airflow_stack.py.
SERVICE_OF = {
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
    "celery-worker": "airflow-worker",
}
CONN_ID_PARAMETERS = ("cloud4wi_conn_id", "aws_conn_id", "gcp_conn_id")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The Compose file as data, YAML merge keys resolved."""
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services, by name."""
    return dict(compose["services"])


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The long-running Airflow components (the ones that parse DAGs or run tasks)."""
    return {name: spec for name, spec in services.items() if command_text(spec) in AIRFLOW_COMMANDS}


def command_text(spec: dict[str, Any]) -> str:
    """A service's command as one string, whichever form it is written in."""
    command = spec.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def command_words(spec: dict[str, Any]) -> list[str]:
    """A service's command split into words, shell-style."""
    command = spec.get("command", [])
    return [
        word for part in (command if isinstance(command, list) else [command]) for word in shlex.split(part)
    ]


def option_value(words: list[str], option: str) -> str:
    """The word following ``option`` in a command."""
    assert option in words, f"{option} not in {words}"
    return words[words.index(option) + 1]


def environment(spec: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever form it is written in."""
    env = spec.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def connection(spec: dict[str, Any], conn_id: str) -> dict[str, Any]:
    """A connection defined as JSON by an AIRFLOW_CONN_ variable of a service."""
    return dict(json.loads(environment(spec)[f"AIRFLOW_CONN_{conn_id.upper()}"]))


def depends_on(spec: dict[str, Any]) -> list[str]:
    """The services a service depends on (short or long syntax)."""
    return list(spec.get("depends_on", []))


def load_example(file_name: str) -> ModuleType:
    """Import an example DAG file as a module, to read its settings."""
    spec = importlib.util.spec_from_file_location(
        f"compose_check_{Path(file_name).stem}", EXAMPLE_DAGS / file_name
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_conn_ids() -> set[str]:
    """Every connection id a task of an example DAG uses, defaults included."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    options: dict[str, Any] = {"include_examples": False} if _airflow_2() else {}
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS), **options)
    assert not bag.import_errors, bag.import_errors
    used = set()
    for dag in bag.dags.values():
        for task in dag.tasks:
            # A mapped task keeps its fixed arguments in partial_kwargs.
            fixed = getattr(task, "partial_kwargs", None)
            for name in CONN_ID_PARAMETERS:
                value = fixed.get(name) if fixed is not None else getattr(task, name, None)
                if value:
                    used.add(str(value))
    return used


def _airflow_2() -> bool:
    from airflow import __version__

    return __version__.startswith("2.")


# -------------------------------------------------------------------------------------- schema
def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"The Compose JSON schema is not at {COMPOSE_SCHEMA}.")
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_the_schema_check_rejects_a_misspelt_service_key(compose: dict[str, Any]) -> None:
    # Guards the check above: the schema really is strict about service keys.
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"The Compose JSON schema is not at {COMPOSE_SCHEMA}.")
    import jsonschema

    broken = {**compose, "services": {**compose["services"], "redis": {"image": "redis", "dependson": []}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(COMPOSE_SCHEMA.read_text()), cls=jsonschema.Draft7Validator)


# -------------------------------------------------------------------------------------- wiring
def test_every_depends_on_target_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    dangling = [
        (name, target)
        for name, spec in services.items()
        for target in depends_on(spec)
        if target not in services
    ]
    assert dangling == []


def test_airflow_runs_every_component_with_the_celery_executor(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    assert {command_text(spec) for spec in airflow_services.values()} == AIRFLOW_COMMANDS
    assert {environment(spec)["AIRFLOW__CORE__EXECUTOR"] for spec in airflow_services.values()} == {
        "CeleryExecutor"
    }


def test_every_connection_the_examples_use_is_defined_in_every_airflow_service(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    used = example_conn_ids()
    assert used == {"cloud4wi_default", "aws_default", "google_cloud_default"}
    for name, spec in airflow_services.items():
        defined = {
            key[len("AIRFLOW_CONN_") :].lower()
            for key in environment(spec)
            if key.startswith("AIRFLOW_CONN_")
        }
        assert used <= defined, name


def test_the_cloud4wi_connection_points_at_the_simulator_service(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    simulator_port = option_value(command_words(services["cloud4wi-simulator"]), "--port")
    for spec in airflow_services.values():
        conn = connection(spec, "cloud4wi_default")
        url = urlsplit(conn["host"])
        assert (url.scheme, url.hostname, str(url.port)) == ("http", "cloud4wi-simulator", simulator_port)
        # Plain http to a host other than loopback is refused unless the connection allows it.
        assert conn["extra"]["allow_insecure_http"] is True
        assert conn["extra"]["organization_id"]


def test_the_aws_connection_points_at_the_minio_service(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    minio = services["minio"]
    minio_port = option_value(command_words(minio), "--address").rsplit(":", 1)[1]
    for spec in airflow_services.values():
        conn = connection(spec, "aws_default")
        url = urlsplit(conn["extra"]["endpoint_url"])
        assert (url.hostname, str(url.port)) == ("minio", minio_port)
        assert (conn["login"], conn["password"]) == (
            environment(minio)["MINIO_ROOT_USER"],
            environment(minio)["MINIO_ROOT_PASSWORD"],
        )


def test_google_cloud_storage_requests_go_to_the_fake_gcs_service(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    gcs_port = option_value(command_words(services["fake-gcs-server"]), "-port")
    for spec in airflow_services.values():
        url = urlsplit(environment(spec)["STORAGE_EMULATOR_HOST"])
        assert (url.hostname, str(url.port)) == ("fake-gcs-server", gcs_port)
        assert connection(spec, "google_cloud_default")["extra"]["is_anonymous"] is True


def test_the_minio_init_container_creates_the_s3_examples_default_bucket(
    services: dict[str, dict[str, Any]],
) -> None:
    created = re.findall(r"mc mb (?:--\S+ )*local/(\S+)", command_text(services["minio-init"]))
    defaults = {
        load_example(name).DEFAULT_S3_BUCKET for name in ("cloud4wi_events_to_s3.py", "cloud4wi_backfill.py")
    }
    assert set(created) == defaults
    assert "minio" in depends_on(services["minio-init"])


def test_the_gcs_init_container_creates_the_gcs_examples_default_bucket(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["gcs-init"]
    created = re.findall(r"""--data '\{"name": "([^"]+)"\}'""", command_text(init))
    assert created == [load_example("cloud4wi_events_to_gcs.py").DEFAULT_GCS_BUCKET]
    assert "http://fake-gcs-server:4443/storage/v1/b" in command_text(init)


def test_airflow_waits_for_the_buckets_and_the_simulator(airflow_services: dict[str, dict[str, Any]]) -> None:
    for name, spec in airflow_services.items():
        conditions = {target: rule["condition"] for target, rule in spec["depends_on"].items()}
        assert conditions["minio-init"] == "service_completed_successfully", name
        assert conditions["gcs-init"] == "service_completed_successfully", name
        assert conditions["cloud4wi-simulator"] == "service_healthy", name


def test_the_dags_folder_is_example_dags_and_the_provider_comes_from_the_checkout(
    airflow_services: dict[str, dict[str, Any]],
) -> None:
    for name, spec in airflow_services.items():
        mounts = dict(volume.split(":")[:2] for volume in spec["volumes"])
        assert mounts["./example_dags"] == "/opt/airflow/dags", name
        requirements = environment(spec)["_PIP_ADDITIONAL_REQUIREMENTS"]
        assert mounts["."] in requirements, name


def test_the_simulator_service_runs_the_simulator_module_from_the_checkout(
    services: dict[str, dict[str, Any]],
) -> None:
    simulator = services["cloud4wi-simulator"]
    words = command_words(simulator)
    assert "airflow_provider_cloud4wi.testing.simulator" in words
    assert option_value(words, "--host") == "0.0.0.0"
    mounts = dict(volume.split(":")[:2] for volume in simulator["volumes"])
    assert mounts["."] == environment(simulator)["PYTHONPATH"]


# ------------------------------------------------- the same deployment as tests/test_celery_backfill.py
def service_address(services: dict[str, dict[str, Any]], name: str, port: int) -> str:
    """``name:port``, once checked that the service listens on ``port`` inside the network."""
    spec = services[name]
    published = [str(mapping).rsplit(":", 1)[-1] for mapping in spec.get("ports", [])]
    exposed = [str(port_) for port_ in spec.get("expose", [])]
    default_ports = {"postgres": "5432"}
    assert str(port) in [*published, *exposed, default_ports.get(name)], (name, port)
    return f"{name}:{port}"


def test_every_airflow_service_has_the_celery_settings_the_test_runs(
    services: dict[str, dict[str, Any]], airflow_services: dict[str, dict[str, Any]]
) -> None:
    shared = celery_environment(
        postgres=service_address(services, "postgres", 5432),
        redis=service_address(services, "redis", 6379),
        api_server=service_address(services, "airflow-apiserver", 8080),
    )
    for name, spec in airflow_services.items():
        env = environment(spec)
        assert {key: env.get(key) for key in shared} == shared, name


def test_the_postgres_service_has_the_account_the_settings_name(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["postgres"])
    url = urlsplit(
        celery_environment(postgres="postgres:5432", redis="", api_server="")[
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        ]
    )
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        url.username,
        url.password,
        url.path.lstrip("/"),
    )


def test_each_airflow_service_runs_the_command_the_test_runs(services: dict[str, dict[str, Any]]) -> None:
    for component, name in SERVICE_OF.items():
        assert command_words(services[name]) == list(COMMANDS[component]), name


def test_the_celery_workers_are_as_many_as_in_the_test(services: dict[str, dict[str, Any]]) -> None:
    assert services[SERVICE_OF["celery-worker"]]["deploy"]["replicas"] == CELERY_WORKERS
