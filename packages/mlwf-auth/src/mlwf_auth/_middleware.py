"""``Authorization: Negotiate`` on any API request: the Kerberos client is the request's user.

Scripts may skip ``/auth/token`` and send a Negotiate header with each request (each costs a
ticket check on the server; a token is cheaper for many requests). The middleware accepts the
header, finds the user's groups in LDAP and hands the user to Airflow the way Airflow's own
cookie middleware does (``request.state.user`` with the trust marker of
``airflow.api_fastapi.core_api.security``). A refused header is a 401; other requests pass
through, with ``WWW-Authenticate: Negotiate`` added to a 401 (so that Kerberos clients answer
it). A success carries the server's mutual-authentication token when Kerberos gives one. The
auth manager's own routes (``/auth/…``) read the header themselves.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from mlwf_auth._routes import LoginManager


class NegotiateMiddleware(BaseHTTPMiddleware):
    """Authenticate requests that carry ``Authorization: Negotiate``."""

    def __init__(self, app: ASGIApp, manager: LoginManager) -> None:
        """Wrap ``app``; ``manager`` accepts the tokens and knows the users."""
        super().__init__(app)
        self.manager = manager

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Set the request's user from a Negotiate header, or answer 401 if it is refused."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("negotiate ") or _own_route(request):
            response = await call_next(request)
            challenges = response.headers.getlist("www-authenticate")
            if response.status_code == 401 and not any(
                c.lower().startswith("negotiate") for c in challenges
            ):
                # Offer Kerberos too, so that `curl --negotiate` and requests-gssapi answer
                # Airflow's 401 with a ticket.
                response.headers.append("WWW-Authenticate", "Negotiate")
            return response
        from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE

        from mlwf_auth._routes import _negotiated_user, _Refused

        try:
            # Per request: groups from the cache (a login reads them fresh).
            user, mutual = await asyncio.to_thread(
                _negotiated_user, self.manager, header, fresh=False
            )
        except _Refused as refused:
            headers = {"WWW-Authenticate": "Negotiate"} if refused.status == 401 else None
            return JSONResponse({"detail": refused.message}, refused.status, headers=headers)
        request.state.user = user
        request.state.user_authenticated_via = USER_INJECTED_BY_TRUSTED_MIDDLEWARE
        # The explicit credential wins: without the session cookie, Airflow's cookie
        # middleware (which runs after this one) cannot replace the user with the cookie's.
        request.scope["headers"] = [
            (key, value) for key, value in request.scope["headers"] if key != b"cookie"
        ]
        response = await call_next(request)
        if mutual and "www-authenticate" not in response.headers:
            # Proves this server to the client (requests-gssapi requires it by default).
            response.headers["WWW-Authenticate"] = mutual
        return response


def _own_route(request: Request) -> bool:
    from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX

    return request.url.path.startswith(AUTH_MANAGER_FASTAPI_APP_PREFIX + "/")
