"""The distributions as a user gets them: build, ``twine check``, then install into a clean venv.

The wheel is installed with the Airflow version of the running interpreter (and the amazon / google
providers when it has them), pinned to the running environment's versions so that uv's cache makes
the install quick, and checked from outside the checkout: ``airflow providers list``, the providers
manager's ``cloud4wi`` connection type, and an import of every public class.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_cloud4wi import __version__

ROOT = Path(__file__).resolve().parents[1]
DIST_NAME = "airflow-provider-cloud4wi"
PROJECT = "airflow_provider_cloud4wi"
PUBLIC_CLASSES = {
    f"{PROJECT}.hooks.cloud4wi": ["Cloud4WiHook"],
    f"{PROJECT}.transfers.events_to_s3": ["Cloud4WiEventsToS3Operator"],
    f"{PROJECT}.transfers.events_to_gcs": ["Cloud4WiEventsToGCSOperator"],
    f"{PROJECT}.sensors.events": ["Cloud4WiEventsSensor"],
    f"{PROJECT}.triggers.events": ["Cloud4WiEventsTrigger"],
    f"{PROJECT}.testing.simulator": [],
    f"{PROJECT}.api": ["EventsClient", "ClientSettings"],
}
# Providers installed next to the wheel when the running environment has them, at its version.
OPTIONAL_PROVIDERS = {
    "apache-airflow-providers-amazon": [f"{PROJECT}.transfers.events_to_s3"],
    "apache-airflow-providers-google": [f"{PROJECT}.transfers.events_to_gcs"],
}

pytestmark = pytest.mark.slow


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _find_uv() -> str | None:
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


UV = _find_uv()


class _Timer:
    """Wall time of each step, printed as it finishes (shown with ``-s`` or on failure)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.steps: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        took = time.monotonic() - t0
        self.steps.append((name, took))
        print(f"[packaging] {name}: {took:.1f} s", flush=True)

    def total(self) -> float:
        return time.monotonic() - self.start


def _run(cmd: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float = 180) -> str:
    result = subprocess.run(
        list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _clean_env(airflow_home: Path) -> dict[str, str]:
    """The environment without the test session's Airflow settings, venv or PYTHONPATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env["AIRFLOW_HOME"] = str(airflow_home)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


def _build(dist_dir: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """The sdist, then the wheel built from it, as a release would be (uv build: the fastest frontend)."""
    assert UV is not None
    cmd = [UV, "build", "--out-dir", str(dist_dir), str(ROOT)]
    _run(cmd, env=env, cwd=ROOT)
    (wheel,) = dist_dir.glob("*.whl")
    (sdist,) = dist_dir.glob("*.tar.gz")
    return wheel, sdist


def _check_archives(wheel: Path, sdist: Path) -> None:
    version = __version__
    license_text = (ROOT / "LICENSE").read_bytes()
    changelog_text = (ROOT / "CHANGELOG.md").read_bytes()
    assert license_text.lstrip().startswith(b"Apache License")
    assert b"Version 2.0, January 2004" in license_text

    dist_info = f"{PROJECT}-{version}.dist-info"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        assert f"{dist_info}/licenses/LICENSE" in names, sorted(names)
        assert whl.read(f"{dist_info}/licenses/LICENSE") == license_text
        assert f"{dist_info}/extra_metadata/CHANGELOG.md" in names, sorted(names)
        assert whl.read(f"{dist_info}/extra_metadata/CHANGELOG.md") == changelog_text
        for module in PUBLIC_CLASSES:
            path = module.replace(".", "/")
            assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
    for label in ("Documentation", "Source", "Changelog", "Issues"):
        assert f"Project-URL: {label}, https://" in metadata, label
    assert any(line.lower().startswith("requires-dist: pyjwt>=") for line in metadata.splitlines())
    assert "[apache_airflow_provider]" in entry_points
    assert f"provider_info = {PROJECT}:get_provider_info" in entry_points

    prefix = f"{PROJECT}-{version}"
    with tarfile.open(sdist) as tar:
        names = set(tar.getnames())
        for name in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "PKG-INFO"):
            assert f"{prefix}/{name}" in names, (name, sorted(names))
        member = tar.extractfile(f"{prefix}/LICENSE")
        assert member is not None
        assert member.read() == license_text
        assert not any(name.startswith(f"{prefix}/tests/") for name in names)


CHECK_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    from pathlib import Path

    import airflow
    import airflow_provider_cloud4wi
    from airflow.providers_manager import ProvidersManager

    public, optional, missing = json.loads(sys.argv[1])
    site = Path(airflow.__file__).resolve().parents[1]
    package = Path(airflow_provider_cloud4wi.__file__).resolve()
    assert package.is_relative_to(site), (package, site)

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    provider = manager.providers["airflow-provider-cloud4wi"]
    hook = manager.hooks["cloud4wi"]
    assert hook is not None, "the providers manager could not import the cloud4wi hook"
    assert hook.hook_class_name == "airflow_provider_cloud4wi.hooks.cloud4wi.Cloud4WiHook"
    assert hook.connection_id_attribute_name == "cloud4wi_conn_id"

    imported = []
    for module_name, classes in public.items():
        if module_name in missing:
            assert importlib.util.find_spec(module_name) is not None, module_name
            continue
        module = importlib.import_module(module_name)
        for name in classes:
            getattr(module, name)
            imported.append(name)
    print(json.dumps({"version": provider.version, "airflow": airflow.__version__,
                      "imported": imported, "package": str(package)}))
    """
)


@pytest.mark.skipif(UV is None, reason="uv is not installed (neither beside the interpreter nor on PATH)")
def test_the_built_distributions_install_and_register_in_a_clean_venv(tmp_path: Path) -> None:
    assert UV is not None
    airflow_version = importlib.metadata.version("apache-airflow")
    timer = _Timer()
    env = _clean_env(tmp_path / "airflow_home")

    with timer.step("build wheel + sdist"):
        wheel, sdist = _build(tmp_path / "dist", env)
    with timer.step("twine check + archive contents"):
        _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], env=env, cwd=ROOT)
        _check_archives(wheel, sdist)

    # Pin everything to what the running environment has, so the resolution is the tested one and
    # every wheel comes from uv's cache.
    freeze = _run([UV, "pip", "freeze", "--python", sys.executable, "--exclude-editable"], env=env, cwd=ROOT)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "\n".join(
            line
            for line in freeze.splitlines()
            if line and not line.lower().startswith((DIST_NAME, PROJECT)) and " @ " not in line
        )
        + "\n"
    )
    extras = [dist for dist in OPTIONAL_PROVIDERS if _installed_version(dist)]
    missing_modules = [
        m for dist, modules in OPTIONAL_PROVIDERS.items() if dist not in extras for m in modules
    ]
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    with timer.step(f"uv venv + install (apache-airflow=={airflow_version}, {', '.join(extras)})"):
        _run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env=env, cwd=tmp_path)
        _run(
            [
                UV,
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                "-c",
                str(constraints),
                str(wheel),
                f"apache-airflow=={airflow_version}",
                *extras,
            ],
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    # The CLI and the providers manager check are independent: run them side by side, each with
    # its own AIRFLOW_HOME (both would otherwise race to write airflow.cfg).
    with (
        timer.step("airflow providers list | providers manager + imports (in parallel)"),
        ThreadPoolExecutor(2) as pool,
    ):
        listing_future = pool.submit(
            _run,
            [str(venv / "bin" / "airflow"), "providers", "list", "--output", "json"],
            env=env,
            cwd=tmp_path,
        )
        check_future = pool.submit(
            _run,
            [str(python), "-c", CHECK_SCRIPT, json.dumps([PUBLIC_CLASSES, extras, missing_modules])],
            env=_clean_env(tmp_path / "airflow_home_check"),
            cwd=tmp_path,
        )
        listing, out = listing_future.result(), check_future.result()
    providers = {p["package_name"]: p for p in json.loads(listing[listing.index("[") :])}
    assert DIST_NAME in providers, sorted(providers)
    assert providers[DIST_NAME]["version"] == __version__
    report = json.loads(out.strip().splitlines()[-1])
    assert report["airflow"] == airflow_version
    assert report["version"] == __version__
    expected = [
        name for module, names in PUBLIC_CLASSES.items() if module not in missing_modules for name in names
    ]
    assert report["imported"] == expected
    print(f"[packaging] Airflow {airflow_version}: total {timer.total():.1f} s", flush=True)
