"""The package as it was at an earlier commit, extracted from git for a before/after row.

``make bench`` measures the package of the checkout (A) and, as "A0", the package at the commit
before the speed-up (commit 9ea13b2), so that the before/after stays reproducible.
"""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

from bench.common import REPO_DIR, WORK_DIR

#: The last commit before the speed-up (9ea13b2).
BEFORE_SPEEDUP = "f2b139c"


def tree_at(ref: str) -> tuple[Path | None, str]:
    """Return (a directory with ``airflow_provider_cloud4wi`` as of ``ref``, its hash), or (None, why)."""
    try:
        full = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--verify", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        return None, f"git cannot resolve {ref} here ({err})"
    target = WORK_DIR / f"ref-{full[:12]}"
    if not (target / "airflow_provider_cloud4wi" / "__init__.py").exists():
        archive = subprocess.run(
            ["git", "-C", str(REPO_DIR), "archive", "--format=tar", full, "airflow_provider_cloud4wi"],
            capture_output=True,
            check=True,
        ).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            try:
                tar.extractall(target, filter="data")
            except TypeError:  # Python without extraction filters (3.10 before 3.10.12)
                tar.extractall(target)
    return target, full
