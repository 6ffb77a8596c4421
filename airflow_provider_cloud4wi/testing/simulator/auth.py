"""Service login and the JWTs it issues: HS256 tokens signed and verified with PyJWT."""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from airflow_provider_cloud4wi.testing.simulator.primitives import _loads
from airflow_provider_cloud4wi.testing.simulator.protocol import _ApiError


@dataclass
class _TokenState:
    """What the server remembers of one issued token."""

    uses: int = 0
    revoked: bool = False
    pending_401: int = 0  # data requests still to refuse (the unauthorized_burst fault)


class _TokenAuthority:
    """Checks client credentials, issues tokens and verifies the bearer tokens of requests.

    :param client_key: the only client key accepted at login.
    :param client_secret: its secret.
    :param organization_id: the organization every token grants (its ``org`` claim).
    :param lifetime: seconds from issue to expiry (rounded up to whole seconds).
    :param secret: the HMAC key tokens are signed with.
    """

    def __init__(
        self, *, client_key: str, client_secret: str, organization_id: str, lifetime: float, secret: str
    ) -> None:
        self._client_key = client_key
        self._client_secret = client_secret
        self._organization_id = organization_id
        self._lifetime = lifetime
        self._secret = secret
        self._tokens: dict[str, _TokenState] = {}
        self._lock = threading.Lock()

    def check_login(self, body: bytes) -> bool:
        """Whether the login ``body`` names the configured client (400 when it is malformed)."""
        try:
            payload = _loads(body)
        except ValueError:
            raise _ApiError(400, "request body must be JSON") from None
        if not isinstance(payload, dict) or not {"clientKey", "clientSecret"} <= payload.keys():
            raise _ApiError(400, "clientKey and clientSecret are required")
        key, secret = payload["clientKey"], payload["clientSecret"]
        return (
            isinstance(key, str)
            and isinstance(secret, str)
            and secrets.compare_digest(key.encode(), self._client_key.encode())
            and secrets.compare_digest(secret.encode(), self._client_secret.encode())
        )

    def issue(self, *, refusals: int = 0) -> str:
        """A new valid JWT for the configured client.

        :param refusals: how many data requests with it :meth:`refuse_once` refuses first.
        """
        issued = int(time.time())
        jti = secrets.token_hex(16)
        claims = {
            "sub": self._client_key,
            "org": self._organization_id,
            "iat": issued,
            "exp": issued + math.ceil(self._lifetime),
            "jti": jti,
        }
        with self._lock:
            self._tokens[jti] = _TokenState(pending_401=refusals)
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def authenticate(
        self, header: str | None, *, expired_forbidden: bool = False
    ) -> tuple[dict[str, Any], _TokenState]:
        """The claims and state of the bearer token in ``header``; a 401 error when it is not valid.

        :param header: the request's ``Authorization`` header, if any.
        :param expired_forbidden: answer an expired token with 403 instead of 401.
        """
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _ApiError(401, "missing bearer token")
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "sub", "org", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            if expired_forbidden:
                raise _ApiError(403, "forbidden") from None
            raise _ApiError(401, "token expired") from None
        except jwt.InvalidTokenError:
            raise _ApiError(401, "invalid token") from None
        with self._lock:
            state = self._tokens.setdefault(str(claims["jti"]), _TokenState())
        if state.revoked:
            raise _ApiError(401, "token revoked")
        return claims, state

    def refuse_once(self, state: _TokenState) -> bool:
        """Whether the token of ``state`` still has a refusal due (and use one up)."""
        with self._lock:
            if state.pending_401 <= 0:
                return False
            state.pending_401 -= 1
            return True
