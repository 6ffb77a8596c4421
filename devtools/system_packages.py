"""
Debian packages the integration tests need (PostgreSQL, Redis, Chromium), installed when absent.

``ensure_installed`` checks with ``dpkg-query`` and, only for what is missing, runs ``apt-get
update`` (once per process) and ``apt-get install``. It never raises: it answers ``None`` when
everything is there and otherwise the reason it is not, for a test to skip with. Installing needs
root (CI runs as root); anyone else gets the command to run instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator

POSTGRESQL = ("postgresql",)
REDIS = ("redis-server",)
CHROMIUM = ("chromium", "chromium-driver")
POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
CHROMEDRIVER = "/usr/bin/chromedriver"
APT_TIMEOUT_SECONDS = 900.0
POLICY_RC_D = "/usr/sbin/policy-rc.d"
# Recommended packages are skipped (no udev, printing, mesa...), but screenshots need a font.
EXTRAS = ("--no-install-recommends", "fonts-liberation")


def missing(packages: Iterable[str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    absent = []
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "--show", "--showformat=${db:Status-Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if status.returncode != 0 or status.stdout.strip() != "installed":
            absent.append(package)
    return absent


def _apt_env() -> dict[str, str]:
    # No debconf questions, and no service started by the packages' scripts: the tests start
    # their own throwaway servers on free ports.
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}


def _apt(*args: str) -> str | None:
    """Run apt-get; ``None`` on success, else the end of its output."""
    try:
        done = subprocess.run(
            ["apt-get", *args],
            env=_apt_env(),
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"apt-get {' '.join(args)}: {error}"
    if done.returncode == 0:
        return None
    return f"apt-get {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-2000:]}"


@functools.cache
def _apt_update() -> str | None:
    return _apt("update", "-qq")


@contextlib.contextmanager
def _services_not_started() -> Iterator[None]:
    """Forbid package scripts to start services while installing (Debian's policy-rc.d hook).

    The packages' own PostgreSQL cluster and Redis would otherwise run on the default ports; the
    tests start throwaway servers on free ports instead.
    """
    if os.path.exists(POLICY_RC_D):
        yield
        return
    with open(POLICY_RC_D, "w") as script:
        script.write("#!/bin/sh\nexit 101\n")
    os.chmod(POLICY_RC_D, 0o755)
    try:
        yield
    finally:
        os.remove(POLICY_RC_D)


@functools.cache
def _install(packages: tuple[str, ...]) -> str | None:
    absent = missing(packages)
    if not absent:
        return None
    command = f"apt-get install -y {' '.join(absent)}"
    if os.geteuid() != 0:
        return f"Debian packages {', '.join(absent)} are not installed and this is not root: run `{command}`."
    if shutil.which("apt-get") is None:
        return f"Debian packages {', '.join(absent)} are not installed and there is no apt-get."
    with _services_not_started():
        failure = _apt_update() or _apt("install", "-y", "-qq", *absent, *EXTRAS)
    if failure is None and not missing(absent):
        return None
    return f"Could not install {', '.join(absent)} ({command}): {failure or 'dpkg still lists them absent'}"


def ensure_installed(packages: Iterable[str]) -> str | None:
    """Install whichever of ``packages`` is missing; ``None`` when all are there, else why not."""
    return _install(tuple(sorted(packages)))
