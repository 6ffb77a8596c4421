"""Rewrite the shipped table definitions: ``python -m airflow_provider_cloud4wi.schemas``."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_cloud4wi.schemas.render import render_all


def main() -> None:
    """Write every rendered file beside this module and say which changed."""
    directory = Path(__file__).resolve().parent
    for name, text in render_all().items():
        path = directory / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {path}")


if __name__ == "__main__":
    main()
