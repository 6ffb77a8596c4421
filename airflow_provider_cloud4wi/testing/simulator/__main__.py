"""``python -m airflow_provider_cloud4wi.testing.simulator``: run the simulator until SIGTERM or SIGINT."""

from __future__ import annotations

import sys

from airflow_provider_cloud4wi.testing.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
