"""Cloud4WiEventsTrigger: the deferred half of :class:`Cloud4WiEventsSensor`."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow_provider_cloud4wi._compat import BaseTrigger, TriggerEvent
from airflow_provider_cloud4wi.conditions import CHECK_HOOK_KWARGS, EventsCondition
from airflow_provider_cloud4wi.hooks.cloud4wi import Cloud4WiApiError, Cloud4WiHook


def _iso(value: dt.datetime | str) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else value


class Cloud4WiEventsTrigger(BaseTrigger):
    """
    Wait in the triggerer until the Cloud4Wi API holds at least ``min_events`` events of a window.

    It sleeps until ``window_end + settle_delay`` without sending anything, then checks every
    ``poke_interval`` seconds. It fires once: ``{"status": "success", "count": n}``, or
    ``{"status": "error", "message": ..., "http_status": ...}`` when the API refuses the request
    (401, 403, 404...) or an argument is invalid. Transient failures only delay the next check.

    Each check is the hook's synchronous request, run in a worker thread (``asyncio.to_thread``) so
    the event loop keeps serving other triggers meanwhile; the kwargs name the connection, never a
    credential.

    :param cloud4wi_conn_id: the Airflow connection to use.
    :param window_start: first instant of the window, an ISO 8601 string (or aware datetime).
    :param window_end: first instant after the window.
    :param organization_id: the ``cid``; None means the connection's.
    :param event_types: count only these types.
    :param customer_id: count only this contact's events.
    :param min_events: how many events end the wait (1 to 10000).
    :param settle_delay: seconds past ``window_end`` before the first check.
    :param poke_interval: seconds between checks once the window has settled.
    """

    def __init__(
        self,
        *,
        window_start: dt.datetime | str,
        window_end: dt.datetime | str,
        cloud4wi_conn_id: str = Cloud4WiHook.default_conn_name,
        organization_id: str | None = None,
        event_types: Sequence[str] | None = None,
        customer_id: str | None = None,
        min_events: int = 1,
        settle_delay: float = 0.0,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.cloud4wi_conn_id = cloud4wi_conn_id
        self.window_start = _iso(window_start)
        self.window_end = _iso(window_end)
        self.organization_id = organization_id
        self.event_types = list(event_types) if event_types is not None else None
        self.customer_id = customer_id
        self.min_events = min_events
        self.settle_delay = float(settle_delay)
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the kwargs that rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cloud4wi_conn_id": self.cloud4wi_conn_id,
                "window_start": self.window_start,
                "window_end": self.window_end,
                "organization_id": self.organization_id,
                "event_types": self.event_types,
                "customer_id": self.customer_id,
                "min_events": self.min_events,
                "settle_delay": self.settle_delay,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the condition and fire one event (success or error)."""
        yield await self._outcome()

    async def _outcome(self) -> TriggerEvent:
        try:
            condition = EventsCondition.from_values(
                window_start=self.window_start,
                window_end=self.window_end,
                min_events=self.min_events,
                settle_delay=self.settle_delay,
                event_types=self.event_types,
                customer_id=self.customer_id,
                organization_id=self.organization_id,
            )
        except (TypeError, ValueError) as err:
            return self._error(err)
        hook = Cloud4WiHook(self.cloud4wi_conn_id, **CHECK_HOOK_KWARGS)
        try:
            count = await self._wait(condition, hook)
        except (Cloud4WiApiError, ValueError) as err:
            event = self._error(err)
        else:
            event = TriggerEvent({"status": "success", "count": count})
        # Not in a `finally`: once cancelled, a check may still be running in its thread, and the
        # session must not be closed under it; the token then simply expires.
        await asyncio.to_thread(hook.close)
        return event

    async def _wait(self, condition: EventsCondition, hook: Cloud4WiHook) -> int:
        while True:
            settle_wait = condition.seconds_until_settled()
            if settle_wait > 0:
                # One long sleep rather than polling: nothing can succeed before the settle time.
                self.log.info(
                    "Sleeping %.0fs, until window %s has settled at %s.",
                    settle_wait,
                    condition.window,
                    condition.settles_at.isoformat(),
                )
                await asyncio.sleep(settle_wait)
                continue
            count = await asyncio.to_thread(condition.check, hook, self.log)
            if count is not None:
                return count
            await asyncio.sleep(self.poke_interval)

    def _error(self, err: Exception) -> TriggerEvent:
        self.log.error("Cloud4Wi events trigger stops: %s", err)
        return TriggerEvent(
            {"status": "error", "message": str(err), "http_status": getattr(err, "http_status", None)}
        )
