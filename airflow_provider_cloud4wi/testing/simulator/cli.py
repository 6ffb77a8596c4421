"""The command line: ``python -m airflow_provider_cloud4wi.testing.simulator``."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from airflow_provider_cloud4wi.testing.simulator.config import SimulatorConfig
from airflow_provider_cloud4wi.testing.simulator.faults import Faults
from airflow_provider_cloud4wi.testing.simulator.server import Cloud4WiSimulator

__all__ = ["main"]


def _parse_datetime(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _parse_fault(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_cloud4wi.testing.simulator",
        description="Serve a deterministic simulation of the Cloud4Wi Explore API (events endpoints).",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to bind, 0 = any free port (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="dataset and fault seed")
    parser.add_argument("--organization-id", default=defaults.organization_id)
    parser.add_argument("--client-key", default=defaults.client_key)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument(
        "--data-start", type=_parse_datetime, default=defaults.data_start, help="ISO 8601, inclusive"
    )
    parser.add_argument(
        "--data-end", type=_parse_datetime, default=defaults.data_end, help="ISO 8601, exclusive"
    )
    parser.add_argument("--events-per-hour", type=int, default=defaults.events_per_hour, help="multiple of 3")
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--token-lifetime", type=float, default=defaults.token_lifetime, help="seconds")
    parser.add_argument("--scroll-ttl", type=float, default=defaults.scroll_ttl, help="seconds")
    parser.add_argument("--page-cache-mb", type=float, default=0.0, help="rendered page cache size, 0 = off")
    parser.add_argument(
        "--fault",
        type=_parse_fault,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"fault setting, repeatable; names: {', '.join(f.name for f in fields(Faults))}",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    _add_fault_flags(parser.add_argument_group("fault shortcuts (each is the --fault of the same name)"))
    return parser


# Flags that set one Faults field each: (flag, field, argparse options).
_FAULT_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "--latency-ms",
        "latency_ms",
        {"type": float, "metavar": "N", "help": "delay every API request's reply by N ms"},
    ),
    (
        "--max-concurrent-requests",
        "max_concurrent_requests",
        {
            "type": int,
            "metavar": "K",
            "help": "answer 429 with Retry-After (retry_after, default 1 s) beyond K requests in flight",
        },
    ),
    (
        "--unauthorized-burst",
        "unauthorized_burst",
        {
            "type": int,
            "metavar": "K",
            "help": "after each login, the token's first K data requests answer 401",
        },
    ),
    (
        "--unauthorized-burst-rate",
        "unauthorized_burst_rate",
        {"type": float, "metavar": "P", "help": "with probability P per login, a burst of 1 to 3 such 401s"},
    ),
    (
        "--expired-token-403",
        "expired_token_403",
        {"action": "store_const", "const": True, "help": "answer a data request with an expired token 403"},
    ),
    (
        "--persistent-401",
        "persistent_401",
        {"action": "store_const", "const": True, "help": "login succeeds, every data request answers 401"},
    ),
)


def _add_fault_flags(group: argparse._ArgumentGroup) -> None:
    for flag, name, options in _FAULT_FLAGS:
        group.add_argument(flag, dest=name, default=None, **options)


def _faults_from(args: argparse.Namespace) -> Faults:
    """The faults of ``--fault NAME=VALUE`` and of the shortcut flags; a name given twice is an error."""
    settings: dict[str, Any] = dict(args.fault)
    for flag, name, _ in _FAULT_FLAGS:
        value = getattr(args, name)
        if value is None:
            continue
        if name in settings:
            raise ValueError(f"{flag} and --fault {name}=... both set {name}")
        settings[name] = value
    return Faults.from_mapping(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM or SIGINT; prints one ``listening`` line once ready."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        faults = _faults_from(args)
        config = SimulatorConfig(
            host=args.host,
            port=args.port,
            seed=args.seed,
            organization_id=args.organization_id,
            client_key=args.client_key,
            client_secret=args.client_secret,
            data_start=args.data_start,
            data_end=args.data_end,
            events_per_hour=args.events_per_hour,
            customers=args.customers,
            token_lifetime=args.token_lifetime,
            scroll_ttl=args.scroll_ttl,
            page_cache_bytes=int(args.page_cache_mb * 1024 * 1024),
            faults=faults,
            verbose=args.verbose,
        )
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    simulator = Cloud4WiSimulator(config)
    try:
        simulator.start()
    except OSError as exc:
        print(f"cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"Cloud4Wi simulator listening on {simulator.url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0
