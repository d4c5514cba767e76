"""Scripts talking to an Airflow with mlwf-auth: a ``requests`` session that logs in by Kerberos.

```python
from mlwf_auth.client import kerberos_session

with kerberos_session("https://airflow.example.com") as airflow:   # uses your kinit ticket
    dags = airflow.get("https://airflow.example.com/api/v2/dags").json()
```

The session gets Airflow's JWT from ``POST /auth/token`` with the user's Kerberos ticket
(requests-gssapi), sends it as ``Authorization: Bearer``, gets a new one a minute before it
expires, and once more when the server refuses the token itself (401, or Airflow's 403 "Invalid
JWT token": a revoked, expired or rotated token; not a 403 for a forbidden DAG). Needs the
``kerberos`` extra.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from mlwf_auth._errors import MlwfAuthError

__all__ = ["KerberosTokenAuth", "TokenError", "kerberos_session"]

#: Airflow's answer (403) to a token it does not accept (airflow.api_fastapi.core_api.security).
INVALID_TOKEN = "Invalid JWT token"


class TokenError(MlwfAuthError):
    """The instance did not give a token: the ticket was refused, or the user has no role there."""


def _expiry(token: str) -> float:
    """Return the ``exp`` of a JWT (not verified: the server verifies), or now + 5 min."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + 300


class KerberosTokenAuth(AuthBase):
    """``requests`` auth: a bearer token from ``{url}/auth/token``, got with the Kerberos ticket."""

    def __init__(
        self,
        url: str,
        *,
        target_name: str | None = None,
        margin: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        """Log in to the instance at ``url``; ``target_name`` defaults to ``HTTP@<its host>``."""
        self.url = url.rstrip("/")
        host = urlsplit(self.url).hostname or "localhost"
        self.target_name = target_name or f"HTTP@{host}"
        self.margin = margin
        self.timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        #: Tokens fetched so far.
        self.fetched = 0

    def _fetch(self) -> str:
        from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth

        # The server's reply proves it holds the service key; checked whenever it sends one.
        negotiate = HTTPSPNEGOAuth(target_name=self.target_name, mutual_authentication=OPTIONAL)
        answer = requests.post(f"{self.url}/auth/token", auth=negotiate, timeout=self.timeout)
        if answer.status_code != 201:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            raise TokenError(
                f"{self.url}/auth/token answered {answer.status_code}: {str(detail)[:300]}"
            )
        token = str(answer.json()["access_token"])
        self.fetched += 1
        return token

    def token(self, *, renew: bool = False) -> str:
        """Return a token valid for at least ``margin`` seconds more (a new one if ``renew``)."""
        with self._lock:
            if renew or self._token is None or time.time() > self._expires - self.margin:
                self._token = self._fetch()
                self._expires = _expiry(self._token)
            return self._token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer token; on a 401, renew it and send the request once more."""
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._retry_once)
        return request

    def _retry_once(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if not _token_refused(response) or getattr(response.request, "_mlwf_retried", False):
            return response
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self.token(renew=True)}"
        retry._mlwf_retried = True  # type: ignore[attr-defined]
        response.content  # noqa: B018  (read the body so the connection is released)
        response.close()
        connection = response.connection
        sent = connection.send(retry, **kwargs)
        sent.history.append(response)
        sent.request = retry
        return sent


def _token_refused(response: requests.Response) -> bool:
    """Whether Airflow refused the token itself (401, or its 403 "Invalid JWT token": revoked,
    expired or signed with a rotated key), not the request (a 403 for a forbidden DAG)."""
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    try:
        return bool(response.json().get("detail") == INVALID_TOKEN)
    except (ValueError, AttributeError):
        return False


def kerberos_session(url: str, **options: Any) -> requests.Session:
    """Return a session authenticated to the instance at ``url`` (options: KerberosTokenAuth's)."""
    session = requests.Session()
    session.auth = KerberosTokenAuth(url, **options)
    return session
