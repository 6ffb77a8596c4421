"""The JWT life cycle: a pre-issued token or a login, renewal before ``exp``, logout."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_cloud4wi.api import replies
from airflow_provider_cloud4wi.api.errors import Cloud4WiApiError, Cloud4WiAuthError, Cloud4WiTransientError
from airflow_provider_cloud4wi.api.logs import Log
from airflow_provider_cloud4wi.api.protocol import LOGIN_PATH, LOGOUT_PATH
from airflow_provider_cloud4wi.api.settings import ClientSettings
from airflow_provider_cloud4wi.api.transport import Transport

_TOKEN_LIFETIME_WITHOUT_EXP = dt.timedelta(days=1)
_TOKEN_RENEWAL_MARGIN_SECONDS = 60.0
#: A token younger than this counts as fresh (see :attr:`Token.is_fresh`).
FRESH_TOKEN_SECONDS = 180.0


@dataclass
class Token:
    """A JWT and when to replace it."""

    value: str = field(repr=False)
    renew_after: float  # time.time() after which a new login is due
    from_login: bool
    issued_monotonic: float = field(default_factory=time.monotonic)

    @property
    def is_fresh(self) -> bool:
        """Issued by a login a moment ago: a refusal of it is about the key, not the token's age."""
        return self.from_login and time.monotonic() - self.issued_monotonic < FRESH_TOKEN_SECONDS


def token_expiry(token: str) -> float | None:
    """Read the ``exp`` claim of a JWT without verifying it (the server verifies; we only schedule)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if exp is not None else None
    except (IndexError, ValueError, AttributeError, TypeError):
        return None


class TokenKeeper:
    """
    Holds the token in use: the pre-issued one, else one from logging in, renewed before it expires.

    :param settings: the credentials.
    :param transport: what the login and logout are sent with.
    :param log: where logins and failed logouts are reported.
    :param on_secret: called with every token obtained, e.g. to hand it to a secrets masker.
    """

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        log: Log,
        on_secret: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.log = log
        self.on_secret = on_secret
        self.token: Token | None = None
        # Parallel slices share one token: one of them logs in while the others wait for it.
        self._lock = threading.Lock()

    def current(self) -> str:
        """The token to send now, logging in when none is held or it is due for renewal."""
        with self._lock:
            token = self.token
            if token is None or time.time() >= token.renew_after:
                if token is None and self.settings.token:
                    token = self._preissued()
                elif self.settings.can_login:
                    token = self.login()
                else:  # an expired pre-issued token and nothing to log in with: the API will judge it
                    token = self._preissued()
                self.token = token
            return token.value

    def renew(self, refused: str | None = None) -> None:
        """
        Replace the token by a fresh login, after the API refused it.

        :param refused: the token that was refused; when another request has replaced it already,
            its replacement is kept and no second login is made.
        """
        with self._lock:
            if refused is not None and self.token is not None and self.token.value != refused:
                return
            self.token = self.login()

    @property
    def holds_fresh_token(self) -> bool:
        """Whether the token held was issued by a login a moment ago."""
        return self.token is not None and self.token.is_fresh

    def secrets(self) -> tuple[str, ...]:
        """Everything secret this keeper knows, to blank out of messages."""
        held = (self.token.value,) if self.token else ()
        return self.settings.secrets + held

    def _preissued(self) -> Token:
        value = self.settings.token or ""
        expiry = token_expiry(value)
        return Token(value=value, renew_after=expiry if expiry else float("inf"), from_login=False)

    def login(self) -> Token:
        """Log in with the client key and secret; no retry loop of its own (callers run one)."""
        settings = self.settings
        reply = self.transport.send(
            "POST",
            LOGIN_PATH,
            json_body={"clientKey": settings.client_key, "clientSecret": settings.client_secret},
        )
        body = replies.decode(
            reply, "POST", LOGIN_PATH, authenticated=False, source=settings.source, secrets=self.secrets()
        )
        value = body.get("token") if isinstance(body, dict) else None
        if not value:
            raise Cloud4WiAuthError("The login reply held no token; is the host really the Cloud4Wi API?")
        self.on_secret(value)
        self.log.info("Logged in to Cloud4Wi at %s (client key %s).", settings.base_url, settings.client_key)
        return Token(value=value, renew_after=_renewal_time(token_expiry(value)), from_login=True)

    def logout(self) -> None:
        """Revoke a token obtained by logging in (a pre-issued token is left alone); never raises."""
        token, self.token = self.token, None
        if token is None or not token.from_login:
            return
        try:
            reply = self.transport.send(
                "POST", LOGOUT_PATH, headers={"Authorization": f"Bearer {token.value}"}
            )
        except (Cloud4WiApiError, Cloud4WiTransientError) as err:
            self.log.warning("Cloud4Wi logout failed (%s); the token expires by itself.", err)
            return
        if 300 <= reply.status_code < 400:
            self.log.warning(
                "Cloud4Wi logout not done: %s",
                replies.redirect_message("POST", LOGOUT_PATH, reply.status_code, reply.headers),
            )


def _renewal_time(expiry: float | None) -> float:
    if expiry is None:
        return time.time() + _TOKEN_LIFETIME_WITHOUT_EXP.total_seconds() - _TOKEN_RENEWAL_MARGIN_SECONDS
    lifetime = max(expiry - time.time(), 0.0)
    return expiry - min(_TOKEN_RENEWAL_MARGIN_SECONDS, lifetime / 10)
