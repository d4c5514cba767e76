"""The auth manager's routes under ``/auth``: login (Kerberos or password), token, logout.

- ``GET /auth/login?next=…``: a request carrying ``Authorization: Negotiate`` (a browser holding
  a Kerberos ticket, after the 401 below) is logged in at once: Airflow's JWT in the ``_token``
  cookie and a redirect to ``next`` (only if it is a URL of this instance). Otherwise a login
  form, with status 401 and ``WWW-Authenticate: Negotiate`` when Kerberos is on, so that a
  browser that can negotiate does.
- ``POST /auth/login``: the form (``username``, ``password``, ``next``), checked by binding to
  LDAP as the user; refused from another site (``Origin`` / ``Sec-Fetch-Site``).
- ``POST /auth/token``: ``{"access_token": JWT}`` for ``Authorization: Negotiate`` or a JSON
  body ``{"username", "password"}`` (scripts).
- ``GET /auth/logout``: ends the browser session (Airflow's ``/api/v2/auth/logout`` revokes the
  tokens and sends the browser here).

Answers: 401 no or wrong credentials or a refused Negotiate token (with ``WWW-Authenticate:
Negotiate`` when Kerberos is on); 403 a user in no role's group or a cross-site form; 413 a
body over 16 KiB; 422 a JSON body that is not an object; 503 LDAP unreachable. Passwords are never logged, echoed or kept.
"""

from __future__ import annotations

import html
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mlwf_auth._directory import DirectoryUser
from mlwf_auth._errors import DirectoryUnavailableError, NegotiationError, UnknownUserError
from mlwf_auth._user import MlwfUser

if TYPE_CHECKING:
    from mlwf_auth._spnego import SpnegoAcceptor

log = logging.getLogger(__name__)

#: The largest body read by a login or token request.
MAX_BODY = 16 * 1024
COOKIE = "_token"


class LoginManager(Protocol):
    """What the routes need of the auth manager (``mlwf_auth.manager.LoginManager``)."""

    @property
    def acceptor(self) -> SpnegoAcceptor | None:
        """The SPNEGO acceptor, or None when Kerberos is off."""

    def find_user(self, name: str, *, fresh: bool) -> DirectoryUser:
        """The directory entry of ``name`` (raises UnknownUserError, DirectoryUnavailableError)."""

    def check_password(self, name: str, password: str) -> DirectoryUser | None:
        """The entry of ``name`` if ``password`` is theirs, else None."""

    def login_user(self, found: DirectoryUser) -> MlwfUser | None:
        """The user to log in for a directory entry, or None without a role."""

    def generate_jwt(self, user: MlwfUser, *, expiration_time_in_seconds: int = ...) -> str:
        """Airflow's JWT for ``user``."""


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(manager: LoginManager) -> FastAPI:
    """Return the FastAPI app of the login, token and logout routes."""
    app = FastAPI(title="mlwf-auth", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/login", response_model=None)
    def login_page(request: Request, next: str | None = None) -> Response:
        # A plain function: FastAPI runs it in its thread pool (LDAP and Kerberos block).
        target = _safe_next(request, next)
        header = request.headers.get("authorization")
        if header and header.lower().startswith("negotiate ") and manager.acceptor is not None:
            try:
                user, mutual = _negotiated_user(manager, header)
            except _Refused as refused:
                return _form(manager, target, refused.message, refused.status)
            response = _logged_in(request, manager, user, target)
            if mutual:
                response.headers["WWW-Authenticate"] = mutual
            return response
        return _form(manager, target, None, 401 if manager.acceptor is not None else 200)

    @app.post("/login", response_model=None)
    async def login_form(request: Request) -> Response:
        if _cross_site(request):
            return _form(manager, "", "This form was sent from another site.", 403)
        try:
            fields = parse_qs((await _body(request)).decode("utf-8"), max_num_fields=10)
        except _Refused as refused:
            return _form(manager, "", refused.message, refused.status)
        except UnicodeDecodeError:
            return _form(manager, "", "The form is not UTF-8.", 400)
        except ValueError:  # more fields than a login form has
            return _form(manager, "", "The form has unexpected fields.", 400)
        target = _safe_next(request, _first(fields, "next"))
        name, password = _first(fields, "username"), _first(fields, "password")
        try:
            # LDAP binds block: off the event loop, so one slow login stalls nobody else.
            user = await run_in_threadpool(_password_user, manager, name, password)
        except _Refused as refused:
            return _form(manager, target, refused.message, refused.status)
        return _logged_in(request, manager, user, target, status=303)

    @app.post("/token", response_model=None)
    async def token(request: Request) -> Response:
        mutual = None
        try:
            header = request.headers.get("authorization")
            if header and header.lower().startswith("negotiate "):
                if manager.acceptor is None:
                    raise _Refused(401, "Kerberos is not enabled on this instance")
                user, mutual = await run_in_threadpool(_negotiated_user, manager, header)
            else:
                body = _json_credentials(request, await _body(request))
                name, password = body.get("username"), body.get("password")
                user = await run_in_threadpool(_password_user, manager, name, password)
        except _Refused as refused:
            headers = {"WWW-Authenticate": "Negotiate"} if refused.status == 401 else None
            return JSONResponse({"detail": refused.message}, refused.status, headers=headers)
        return JSONResponse(
            {"access_token": manager.generate_jwt(user)},
            status_code=201,
            headers={"WWW-Authenticate": mutual} if mutual else None,
        )

    @app.get("/logout", response_model=None)
    def logout(request: Request) -> Response:
        response = HTMLResponse(
            _page(
                "Logged out",
                '<p>You are logged out.</p><p><a href="login">Log in again</a></p>',
            )
        )
        _clear_cookie(request, response)
        return response

    return app


def _negotiated_user(
    manager: LoginManager, header: str, *, fresh: bool = True
) -> tuple[MlwfUser, str | None]:
    """Return the Negotiate header's user and the ``WWW-Authenticate`` value that proves this
    server to the client (mutual authentication), if Kerberos gave a reply token."""
    acceptor = manager.acceptor
    assert acceptor is not None  # the callers check
    try:
        negotiated = acceptor.accept(header)
    except NegotiationError as err:
        # The reason goes to the log; the client learns only that its ticket was refused.
        log.info("mlwf-auth: Negotiate refused: %s", err)
        raise _Refused(401, "Kerberos login refused: see the server's log for why") from None
    return _known_user(manager, negotiated.user, fresh=fresh), negotiated.www_authenticate


def _password_user(manager: LoginManager, name: object, password: object) -> MlwfUser:
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise _Refused(401, "Wrong user name or password.")
    try:
        found = manager.check_password(name, password)
    except UnknownUserError:
        found = None
    except DirectoryUnavailableError as err:
        log.warning("mlwf-auth: password login of %r failed: %s", name[:64], err)
        raise _Refused(503, "Login is unavailable: the directory cannot be reached.") from None
    if found is None:
        raise _Refused(401, "Wrong user name or password.")
    user = manager.login_user(found)
    if user is None:
        raise _Refused(403, f"{found.name} is in no group of this instance.")
    return user


def _known_user(manager: LoginManager, name: str, *, fresh: bool) -> MlwfUser:
    """Return ``name`` as a user with a role; ``fresh``: read its groups from LDAP, not the cache."""
    try:
        found = manager.find_user(name, fresh=fresh)
    except UnknownUserError:
        raise _Refused(403, f"{name} is not in the directory.") from None
    except DirectoryUnavailableError as err:
        log.warning("mlwf-auth: Kerberos login of %r failed: %s", name, err)
        raise _Refused(503, "Login is unavailable: the directory cannot be reached.") from None
    user = manager.login_user(found)
    if user is None:
        raise _Refused(403, f"{name} is in no group of this instance.")
    return user


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _Refused(413, f"The body is over {MAX_BODY} bytes.")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY:
            raise _Refused(413, f"The body is over {MAX_BODY} bytes.")
    return bytes(chunks)


def _json_credentials(request: Request, body: bytes) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        # No credentials at all: 401 with the Negotiate challenge, which is what makes a
        # Kerberos client (requests-gssapi, curl --negotiate) send its ticket.
        raise _Refused(
            401, "Send Authorization: Negotiate, or a JSON body with username and password."
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(422, "The body is not JSON.") from None
    if not isinstance(document, dict):
        raise _Refused(422, "The body must be an object with username and password.")
    return document


def _first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0]


def _cross_site(request: Request) -> bool:
    """Whether a form post comes from another site (login CSRF)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    mine = urlsplit(str(request.base_url))
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc)


def _safe_next(request: Request, target: str | None) -> str:
    from airflow.api_fastapi.core_api.security import is_safe_url

    try:
        if target and len(target) <= 2048 and is_safe_url(target, request=request):
            return target
    except ValueError:  # urllib refuses it (e.g. "http://["): not a URL of this instance
        pass
    return ""


def _home() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="/") or "/"


def _secure(request: Request) -> bool:
    from airflow.configuration import conf

    return request.base_url.scheme == "https" or bool(conf.get("api", "ssl_cert", fallback=""))


def _logged_in(
    request: Request, manager: LoginManager, user: MlwfUser, target: str, status: int = 307
) -> Response:
    from airflow.api_fastapi.app import get_cookie_path

    response = RedirectResponse(target or _home(), status_code=status)
    response.set_cookie(
        COOKIE,
        manager.generate_jwt(user),
        path=get_cookie_path(),
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    log.info("mlwf-auth: %s logged in", user.name)
    return response


def _clear_cookie(request: Request, response: Response) -> None:
    from airflow.api_fastapi.app import get_cookie_path

    response.delete_cookie(COOKIE, path=get_cookie_path(), secure=_secure(request), httponly=True)


def _form(manager: LoginManager, target: str, message: str | None, status: int) -> HTMLResponse:
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    body = (
        f"{error}"
        '<form method="post" action="login">'
        '<label>User name <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        f'<input type="hidden" name="next" value="{html.escape(target, quote=True)}">'
        '<button type="submit">Log in</button></form>'
    )
    headers = {"WWW-Authenticate": "Negotiate"} if status == 401 and manager.acceptor else None
    return HTMLResponse(_page("Log in", body), status_code=status, headers=headers)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · Airflow</title>"
        "<style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}"
        "label{display:block;margin:.8rem 0}input{display:block;width:100%}"
        ".error{color:#b00}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
