"""dlt's own virtualenv under bench/.work, created by the bench command when missing.

Why not .venv: ``dlt[filesystem]`` needs ``s3fs`` -> ``aiobotocore``, which pins botocore below
the version boto3 and the Amazon provider use in .venv (uv would downgrade botocore and break
them), and it brings ``simplejson``, which ``requests`` then silently uses for ``.json()``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import WORK_DIR

DLT_REQUIREMENT = "dlt[filesystem]"
VENV = WORK_DIR / "dlt-venv"


def python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> tuple[Path | None, str]:
    """Return (python of the dlt venv, description) or (None, why it could not be made)."""
    marker = VENV / ".bench-installed"
    if marker.exists() and python().exists():
        return python(), _describe()
    shutil.rmtree(VENV, ignore_errors=True)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    try:
        if Path(uv).exists() or shutil.which("uv"):
            subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
            subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(python()), DLT_REQUIREMENT], check=True
            )
        else:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(python()), "-m", "pip", "install", "-q", DLT_REQUIREMENT], check=True)
    except (subprocess.CalledProcessError, OSError) as err:
        return None, f"could not install {DLT_REQUIREMENT} into {VENV}: {err}"
    marker.write_text(DLT_REQUIREMENT + "\n")
    return python(), _describe()


def _describe() -> str:
    done = subprocess.run(
        [
            str(python()),
            "-c",
            "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('dlt', 's3fs', 'botocore', 'requests', 'orjson')))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()[-300:]
