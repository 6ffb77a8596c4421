"""What the client needs of a logger: a stdlib one, or the one an Airflow hook carries."""

from __future__ import annotations

from typing import Any, Protocol


class Log(Protocol):
    """A logger with ``info``, ``warning`` and ``error`` taking %-style arguments."""

    def info(self, msg: str, /, *args: Any) -> Any:
        """Log at INFO."""

    def warning(self, msg: str, /, *args: Any) -> Any:
        """Log at WARNING."""

    def error(self, msg: str, /, *args: Any) -> Any:
        """Log at ERROR."""
