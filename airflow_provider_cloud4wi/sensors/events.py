"""Cloud4WiEventsSensor: wait until the Cloud4Wi API holds the events of a window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow_provider_cloud4wi._compat import (
    AirflowException,
    AirflowFailException,
    BaseSensorOperator,
    Context,
    default_deferrable,
)
from airflow_provider_cloud4wi.conditions import (
    CHECK_HOOK_KWARGS,
    EventsCondition,
    check_min_events,
    check_settle_delay,
)
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiApiError, Cloud4WiHook
from airflow_provider_cloud4wi.triggers.events import Cloud4WiEventsTrigger
from airflow_provider_cloud4wi.windows import run_window


class Cloud4WiEventsSensor(BaseSensorOperator):
    """
    Wait until the Cloud4Wi Explore API holds the events of a window, before exporting it.

    Cloud4Wi creates some events late (a ``visit`` only when the contact leaves), so a window
    exported as soon as it closes can be half-filled. This sensor succeeds once the window holds
    at least ``min_events`` events and ``window_end + settle_delay`` has passed. Each poke is one
    small request (no scroll) through the hook's login and retries; a transient API failure only
    makes that poke count as "not yet". It returns (and pushes to XCom) the number of events
    seen, at most ``min_events``.

    It fails at once, without waiting for its timeout, when the window is zero-width or an
    argument is invalid (as :class:`AirflowFailException`: the same run renders the same values,
    so a retry cannot help), and when the API refuses the request, e.g. 401 after a fresh login,
    403 or 404 (as the hook's error, so the task's ``retries`` still apply: credentials and
    permissions can be fixed between tries). ``soft_fail`` does not turn the former into a skip.

    With ``deferrable=True`` the waiting happens in the triggerer (:class:`Cloud4WiEventsTrigger`),
    which sleeps until the settle time and then checks every ``poke_interval``; the sensor's
    ``timeout`` bounds the deferral.

    :param cloud4wi_conn_id: the Airflow connection to use.
    :param organization_id: the ``cid``; defaults to the connection's extra. (templated)
    :param window_start: first instant of the window, aware datetime or ISO 8601. (templated)
    :param window_end: first instant after the window. (templated)
    :param event_types: wait for events of these types only, a list or a comma-separated string.
        (templated)
    :param customer_id: wait for this contact's events only. (templated)
    :param min_events: how many events must be present, 1 to 10000.
    :param settle_delay: how long after ``window_end`` to wait at least, as a timedelta or seconds.
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param partition_grain: on a partitioned run (``CronPartitionTimetable``, Airflow 3.2+) whose
        data interval is zero-width, wait for ``[partition_date, partition_date + grain)``;
        default None: up to the next tick of the DAG's cron timetable.
    :param kwargs: the usual sensor arguments (``poke_interval``, ``timeout``, ``mode``,
        ``soft_fail``, ``exponential_backoff``...) and operator arguments.
    """

    template_fields: Sequence[str] = (
        "window_start",
        "window_end",
        "organization_id",
        "event_types",
        "customer_id",
    )
    ui_color = "#d8f0ef"

    def __init__(
        self,
        *,
        cloud4wi_conn_id: str = Cloud4WiHook.default_conn_name,
        organization_id: str | None = None,
        window_start: dt.datetime | str = "{{ data_interval_start }}",
        window_end: dt.datetime | str = "{{ data_interval_end }}",
        event_types: Sequence[str] | str | None = None,
        customer_id: str | None = None,
        min_events: int = 1,
        settle_delay: dt.timedelta | float = dt.timedelta(0),
        deferrable: bool | None = None,
        partition_grain: dt.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cloud4wi_conn_id = cloud4wi_conn_id
        self.organization_id = organization_id
        self.window_start = window_start
        self.window_end = window_end
        self.event_types = event_types
        self.customer_id = customer_id
        self.min_events = check_min_events(min_events)
        self.settle_delay = check_settle_delay(settle_delay)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.partition_grain = partition_grain
        self._seen: int | None = None

    @cached_property
    def hook(self) -> Cloud4WiHook:
        """The hook every poke of this try shares, so it logs in once."""
        return Cloud4WiHook(self.cloud4wi_conn_id, **CHECK_HOOK_KWARGS)

    def _condition(self) -> EventsCondition:
        try:
            return EventsCondition.from_values(
                window_start=self.window_start,
                window_end=self.window_end,
                min_events=self.min_events,
                settle_delay=self.settle_delay,
                event_types=self.event_types,
                customer_id=self.customer_id,
                organization_id=self.organization_id,
            )
        except (TypeError, ValueError) as err:
            raise AirflowFailException(str(err)) from err

    def execute(self, context: Context) -> int | None:
        """Check the arguments, then wait here (poke or reschedule mode) or in the triggerer."""
        self._adopt_partition_window(context)
        condition = self._condition()
        self.log.info(
            "Waiting for %d event(s) of window %s, not before %s.",
            condition.min_events,
            condition.window,
            condition.settles_at.isoformat(),
        )
        if condition.seconds_until_settled() > self.timeout:
            self.log.warning(
                "The window settles only after this sensor's timeout of %.0fs: it will time out first.",
                self.timeout,
            )
        try:
            if self.deferrable:
                return self._check_then_defer(condition)
            super().execute(context)
            return self._seen
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    def _adopt_partition_window(self, context: Context) -> None:
        """On a partitioned run with a zero-width interval, wait for the partition's window instead."""
        try:
            window = run_window(self.window_start, self.window_end, context, self.partition_grain)
        except (TypeError, ValueError) as err:
            raise AirflowFailException(str(err)) from err
        if not window.is_empty:
            self.window_start, self.window_end = window.start.isoformat(), window.end.isoformat()

    def poke(self, context: Context) -> bool:
        """Check once whether the window holds ``min_events`` events; remember the count seen."""
        self._seen = self._condition().check(self.hook, self.log)
        return self._seen is not None

    def _check_then_defer(self, condition: EventsCondition) -> int:
        # A window caught up on long after it closed is usually complete: one check here spares
        # the round trip through the triggerer.
        if condition.seconds_until_settled() == 0:
            count = condition.check(self.hook, self.log)
            if count is not None:
                return count
        self.defer(
            trigger=Cloud4WiEventsTrigger(
                cloud4wi_conn_id=self.cloud4wi_conn_id,
                window_start=condition.window.start.isoformat(),
                window_end=condition.window.end.isoformat(),
                organization_id=condition.organization_id,
                event_types=condition.event_types,
                customer_id=condition.customer_id,
                min_events=condition.min_events,
                settle_delay=condition.settle_delay.total_seconds(),
                poke_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        """
        Finish after the trigger fired: return the count, or fail with the API's message.

        :param context: the task's context.
        :param event: the trigger's payload.
        """
        if event and event.get("status") == "success":
            count = int(event["count"])
            self.log.info("Window holds at least %d event(s).", count)
            return count
        message = (event or {}).get("message") or "The Cloud4Wi events trigger ended without an event."
        http_status = (event or {}).get("http_status")
        if http_status is not None:
            raise Cloud4WiApiError(message, http_status=int(http_status))
        raise AirflowException(message)
