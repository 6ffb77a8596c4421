"""The retry policy: transient failures only, bounded in attempts and in time (tenacity)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from airflow_provider_cloud4wi.api.errors import Cloud4WiTransientError
from airflow_provider_cloud4wi.api.logs import Log

T = TypeVar("T")


class _RetryWait(tenacity.wait.wait_base):
    """Honour Retry-After (capped), skip the wait when only a fresh query is needed, else back off."""

    def __init__(self, retry_after_cap: float, initial: float, maximum: float) -> None:
        self.retry_after_cap = retry_after_cap
        self.backoff = tenacity.wait_exponential_jitter(initial=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, Cloud4WiTransientError):
            if error.immediate:
                return 0.0
            if error.retry_after is not None:
                return min(error.retry_after, self.retry_after_cap)
        return float(self.backoff(retry_state))


@dataclass(frozen=True)
class RetryPolicy:
    """
    How one request is retried. Login has no loop of its own: it always runs inside a caller's.

    :param max_attempts: attempts per request before a transient failure is raised.
    :param max_retry_seconds: total time the retries of one request may take.
    :param retry_after_cap: the longest ``Retry-After`` honoured, in seconds.
    :param wait_initial: first backoff between retries, in seconds (doubles each time, with jitter).
    :param wait_max: longest backoff between retries, in seconds.
    """

    max_attempts: int = 8
    max_retry_seconds: float = 600.0
    retry_after_cap: float = 120.0
    wait_initial: float = 0.5
    wait_max: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}.")

    def run(
        self,
        what: str,
        call: Callable[[], T],
        log: Log,
        *,
        on_retry: Callable[[], None] | None = None,
        max_attempts: int | None = None,
    ) -> T:
        """
        Run ``call``, retrying transient failures; the last one is raised as it is.

        :param what: names the request in the warning logged before each retry.
        :param on_retry: called once per retry (the pull counts them).
        :param max_attempts: overrides the policy's attempts for this call.
        """
        attempts = max_attempts or self.max_attempts

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            if on_retry is not None:
                on_retry()
            log.warning(
                "Cloud4Wi %s: %s; retry %d of %d in %.1fs.",
                what,
                error,
                state.attempt_number,
                attempts - 1,
                delay,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Cloud4WiTransientError),
            stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(self.max_retry_seconds),
            wait=_RetryWait(self.retry_after_cap, self.wait_initial, self.wait_max),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(call)
