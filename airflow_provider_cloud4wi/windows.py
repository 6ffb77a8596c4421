"""Time windows: parsing the bounds users give, and mapping them onto the API's date filter.

A window is half-open, ``[start, end)`` on ``when.createdAt``, so consecutive DAG intervals share
no instant. The API filters with two *inclusive*, whole-second bounds (``dateStart``/``dateEnd``);
:meth:`Window.api_bounds` converts one into the other exactly, microseconds included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

API_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ONE_SECOND = dt.timedelta(seconds=1)

ZERO_WIDTH_HELP = (
    "On Airflow 3 a cron string or timedelta `schedule` gets a trigger timetable whose runs have "
    "data_interval_start == data_interval_end, so there is no interval to export. Fix it with one of: "
    "schedule=CronDataIntervalTimetable('<cron>', timezone='UTC'); "
    "schedule=CronTriggerTimetable('<cron>', timezone='UTC', interval=timedelta(hours=1)); "
    "set [scheduler] create_cron_data_intervals = True (or create_delta_data_intervals = True for "
    "timedelta schedules); on Airflow 3.2+ schedule=CronPartitionTimetable('<cron>', timezone='UTC', "
    "run_offset=-1), whose runs use their partition's window; or pass explicit window_start/window_end "
    "to the task."
)


class ZeroWidthWindowError(ValueError):
    """The window's end is not after its start, so it cannot hold any event."""


def parse_instant(value: dt.datetime | str, name: str) -> pendulum.DateTime:
    """
    Turn an aware datetime or an ISO 8601 string into a UTC :class:`pendulum.DateTime`.

    :param value: the bound, as given by the user or rendered by Jinja.
    :param name: the parameter's name, used in the error message.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = pendulum.parse(text, tz=None, exact=True)
        except (ValueError, pendulum.parsing.exceptions.ParserError) as err:
            raise ValueError(
                f"{name}={value!r} is not an ISO 8601 date-time; give e.g. '2024-05-01T00:00:00+00:00' "
                "or an aware datetime."
            ) from err
        if not isinstance(parsed, dt.datetime):
            raise ValueError(
                f"{name}={value!r} is a date, not a date-time; give e.g. '{text}T00:00:00+00:00'."
            )
        value = parsed
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime or an ISO 8601 string, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}={value.isoformat()} has no timezone; Cloud4Wi stores UTC times, so give an aware "
            "value such as '2024-05-01T00:00:00+00:00' or pendulum.datetime(..., tz='UTC')."
        )
    return pendulum.instance(value).in_timezone("UTC")


def format_api_date(value: dt.datetime) -> str:
    """Format a UTC instant the way the API's ``dateStart``/``dateEnd`` expect it."""
    return value.astimezone(dt.timezone.utc).strftime(API_DATE_FORMAT)


def _ceil_to_second(value: dt.datetime) -> dt.datetime:
    if value.microsecond:
        return value.replace(microsecond=0) + _ONE_SECOND
    return value


@dataclass(frozen=True)
class Window:
    """
    A half-open interval ``[start, end)`` of event creation times, in UTC.

    :param start: first instant included.
    :param end: first instant excluded; not before ``start``.
    """

    start: pendulum.DateTime
    end: pendulum.DateTime

    @classmethod
    def parse(cls, start: dt.datetime | str, end: dt.datetime | str) -> Window:
        """Build a window from user input, refusing naive values and an end before the start."""
        window = cls(parse_instant(start, "window_start"), parse_instant(end, "window_end"))
        if window.end < window.start:
            raise ValueError(
                f"window_end ({window.end.isoformat()}) is before window_start ({window.start.isoformat()}); "
                "swap them or check the templates that render them."
            )
        return window

    @property
    def is_empty(self) -> bool:
        """True when no instant lies in the window."""
        return self.end <= self.start

    def require_width(self) -> Window:
        """Return the window itself, or raise :class:`ZeroWidthWindowError` when it is zero-width."""
        if self.is_empty:
            raise ZeroWidthWindowError(
                f"The window [{self.start.isoformat()}, {self.end.isoformat()}) is zero-width. "
                + ZERO_WIDTH_HELP
            )
        return self

    def api_bounds(self) -> tuple[str, str] | None:
        """
        Return the inclusive whole-second ``(dateStart, dateEnd)`` that select exactly this window.

        Events carry whole-second timestamps, so ``t >= start`` means ``t >= ceil(start)`` and
        ``t < end`` means ``t <= ceil(end) - 1s``. Returns None when no whole second lies inside.
        """
        first = _ceil_to_second(self.start)
        last = _ceil_to_second(self.end) - _ONE_SECOND
        if last < first:
            return None
        return format_api_date(first), format_api_date(last)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def next_cron_tick(expression: str, timezone: Any, after: dt.datetime) -> pendulum.DateTime:
    """
    Return the first tick of a cron expression strictly after ``after``, in UTC.

    :param expression: the cron expression, e.g. ``"0 * * * *"``.
    :param timezone: the timezone the expression is read in (a name or a tzinfo).
    :param after: an aware instant.
    """
    from croniter import croniter

    tz = pendulum.timezone(timezone) if isinstance(timezone, str) else timezone
    local = pendulum.instance(after).in_timezone(tz)
    tick = croniter(expression, local).get_next(dt.datetime)
    return pendulum.instance(tick).in_timezone("UTC")


def partition_window(
    partition_date: dt.datetime,
    *,
    grain: dt.timedelta | None = None,
    cron: tuple[str, Any] | None = None,
) -> Window:
    """
    Return the window of a partition: from the partition date to the end of its grain.

    The end is ``partition_date + grain`` when a grain is given, else the next tick of ``cron``
    (the DAG's ``CronPartitionTimetable``), so an hourly timetable gives hourly windows.

    :param partition_date: the partition's date (``partition_date`` in the task context).
    :param grain: the partition's length, e.g. ``timedelta(hours=1)``.
    :param cron: ``(expression, timezone)`` of the partitioned timetable, used when ``grain`` is None.
    """
    start = parse_instant(partition_date, "partition_date")
    if grain is not None:
        if grain <= dt.timedelta(0):
            raise ValueError(f"partition_grain must be a positive timedelta, not {grain!r}.")
        return Window(start, start + grain)
    if cron is None:
        raise ValueError(
            "The run has a partition but its timetable has no cron expression to tell where the partition "
            "ends; pass partition_grain (e.g. timedelta(hours=1)) or explicit window_start/window_end."
        )
    return Window(start, next_cron_tick(cron[0], cron[1], start))


def run_window(
    start: dt.datetime | str, end: dt.datetime | str, context: Mapping[str, Any], grain: dt.timedelta | None
) -> Window:
    """
    Return a task's window: ``[start, end)``, or its partition's when that is zero-width.

    A ``CronPartitionTimetable`` run (Airflow 3.2+) has a zero-width data interval and a
    ``partition_key``; its window is then :func:`partition_window` of the run's ``partition_date``,
    ending at the next tick of the DAG's cron timetable unless ``grain`` is given. Any other
    zero-width window is returned as it is, for the caller to refuse.

    :param start: the rendered ``window_start``.
    :param end: the rendered ``window_end``.
    :param context: the task's context (``partition_key``, ``partition_date``, ``dag``).
    :param grain: the partition's length, or None for the timetable's cron.
    """
    window = Window.parse(start, end)
    if not window.is_empty or not context.get("partition_key"):
        return window
    partition_date = context.get("partition_date")
    if partition_date is None:
        raise ValueError(
            f"The run's partition {context.get('partition_key')!r} has no partition date to derive a "
            "window from; pass explicit window_start/window_end to the task."
        )
    timetable = getattr(context.get("dag"), "timetable", None)
    # The task SDK's timetables name these ``expression``/``timezone``; the scheduler's, with a ``_``.
    expression = getattr(timetable, "expression", None) or getattr(timetable, "_expression", None)
    timezone = getattr(timetable, "timezone", None) or getattr(timetable, "_timezone", None)
    cron = (expression, timezone or "UTC") if isinstance(expression, str) else None
    return partition_window(partition_date, grain=grain, cron=cron)
