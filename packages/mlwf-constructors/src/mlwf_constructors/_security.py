"""Who may do what through the constructors API, and which requests count as the user's own.

Authorization asks Airflow's configured auth manager, as Airflow's own routes do:
``is_authorized_dag`` with ``DagDetails(id, team_name)``. With ``[core] multi_team`` on the
team of an instance's DAG (and of every DAG it defines) is the team of the bundle its file is
written to; the team of a DAG it uses is that DAG's (``DagModel.get_team_name``).

Cross-site request forgery: a browser sends the ``_token`` cookie with any request to the API
server, whichever site made it. So a write authenticated by that cookie must come from the API
server's own origin (``Origin``, else ``Referer``, against ``[api] base_url`` or the request's own
``scheme://host:port``) and carry ``Content-Type: application/json``, which a cross-site form
cannot send and a cross-site script cannot send without a CORS preflight the API server refuses.
A request with an ``Authorization: Bearer`` header is not forgeable that way; it still needs JSON
when it has a body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from fastapi import HTTPException, Request

from mlwf_constructors._constructor import RelatedDag

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from mlwf_constructors._service import Settings

Method = Literal["GET", "POST", "PUT", "DELETE"]
_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- authorization ------------------------------------------------------------------------


def multi_team() -> bool:
    """Return ``[core] multi_team``."""
    from airflow.configuration import conf

    return conf.getboolean("core", "multi_team", fallback=False)


def bundle_team(settings: Settings) -> str | None:
    """Return the team owning the bundle instance files are written to (None without multi_team)."""
    if not multi_team():
        return None
    from airflow.models.dagbundle import DagBundleModel

    return DagBundleModel.get_team_name(settings.bundle_name)


def dag_team(dag_id: str) -> str | None:
    """Return the team of an existing DAG, as Airflow's routes do (None without multi_team)."""
    if not multi_team():
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


def dag_known(dag_id: str) -> bool:
    """Return whether Airflow's DAG table has a row for ``dag_id`` (stale or not)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return (
            session.execute(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)).first()
            is not None
        )


def is_authorized(
    user: BaseUser,
    method: Method,
    dag_id: str | None,
    team_name: str | None,
    access_entity: DagAccessEntity | None = None,
) -> bool:
    """Ask the configured auth manager whether ``user`` may ``method`` the DAG (or an entity of it)."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_dag(
        method=method,
        access_entity=access_entity,
        details=DagDetails(id=dag_id, team_name=team_name),
        user=user,
    )


#: Groups recorded as an instance's owners at most (a bound on the stored list).
MAX_OWNER_GROUPS = 100


def owner_groups(user: BaseUser, dag_id: str) -> tuple[str, ...]:
    """Return the groups that own an instance ``user`` creates with DAG id ``dag_id``.

    The configured auth manager decides, if it knows groups: mlwf-auth's ``owner_groups(user=,
    dag_id=)`` names the user's current groups through which it may edit that DAG (those that
    allowed the creation), not every group it is in. Any other auth manager: none.
    """
    from airflow.api_fastapi.app import get_auth_manager

    decide = getattr(get_auth_manager(), "owner_groups", None)
    if not callable(decide):
        return ()
    found = decide(user=user, dag_id=dag_id)
    names = sorted({g for g in found if isinstance(g, str) and g})
    return tuple(names[:MAX_OWNER_GROUPS])


@dataclass(frozen=True)
class Check:
    """One authorization an operation needs, with the words of its 403."""

    method: Method
    dag_id: str
    team_name: str | None
    access_entity: DagAccessEntity | None
    refusal: str
    #: Refused whatever the auth manager says (a used DAG Airflow does not know, with multi_team).
    refused: bool = False


def checks(
    settings: Settings,
    method: Method,
    instance_id: str,
    related: Sequence[RelatedDag] = (),
    *,
    uses: bool,
) -> list[Check]:
    """Return what ``method`` on an instance needs: the instance's DAG, its defined DAGs, and
    (``uses=True``) the right to trigger and read the XComs of every DAG it uses.
    """
    team = bundle_team(settings)
    wanted = [
        Check(method, instance_id, team, None, f"not authorized to {method} DAG {instance_id!r}")
    ]
    for rel in related:
        if rel.role == "defines":
            wanted.append(
                Check(
                    method,
                    rel.dag_id,
                    team,  # written into the same file, so in the same bundle
                    None,
                    f"not authorized to {method} DAG {rel.dag_id!r}, which instance "
                    f"{instance_id!r} defines",
                )
            )
        elif uses:
            used_team = dag_team(rel.dag_id)
            # With multi_team an unknown DAG has no team, which auth managers read as "any
            # team": a DAG another team ships later under that id would be triggered. Refused
            # with the wording of an unauthorized DAG, so "exists elsewhere" and "does not
            # exist" look alike.
            unknown = multi_team() and not dag_known(rel.dag_id)
            wanted.append(
                Check(
                    "POST",
                    rel.dag_id,
                    used_team,
                    DagAccessEntity.RUN,
                    f"not authorized to trigger runs of DAG {rel.dag_id!r} (POST RUN), which "
                    f"instance {instance_id!r} uses",
                    refused=unknown,
                )
            )
            wanted.append(
                Check(
                    "GET",
                    rel.dag_id,
                    used_team,
                    DagAccessEntity.XCOM,
                    f"not authorized to read XComs of DAG {rel.dag_id!r} (GET XCOM), which "
                    f"instance {instance_id!r} uses",
                )
            )
    return wanted


def require(user: BaseUser, wanted: Sequence[Check]) -> None:
    """Raise 403 naming the first DAG and action ``user`` is not authorized for."""
    for check in wanted:
        if check.refused or not is_authorized(
            user, check.method, check.dag_id, check.team_name, check.access_entity
        ):
            raise HTTPException(403, check.refusal)


# -- cross-site request forgery ------------------------------------------------------------


def authenticated_by_cookie(request: Request) -> bool:
    """Return whether Airflow's ``get_user`` took the user from the cookie (no Bearer header)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return not (scheme.lower() == "bearer" and credentials.strip())


def _origin_of(url: str) -> str | None:
    """Return ``scheme://host:port`` of ``url``, or None for anything a browser might read otherwise.

    ``urlsplit`` takes the host after the last ``@`` while a browser (WHATWG URL) ends the
    authority at a backslash: ``http://evil.com\\@127.0.0.1/`` is evil.com to the browser and
    127.0.0.1 to urlsplit. Browsers never send userinfo, backslashes or whitespace in the authority
    of an Origin or Referer, so such a value is refused rather than interpreted.
    """
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        return None
    # The authority as urlsplit reads it (up to / ? #); a path or query may hold '@' legitimately.
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if "@" in authority or "\\" in authority:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"


def expected_origins(request: Request) -> list[str]:
    """Return the API server's origins: that of ``[api] base_url`` (if set), then the request's own.

    The request's own ``scheme://Host`` is accepted too: a browser sends ``Host`` for the server it
    connects to and ``Origin`` for the page that made the request, so they agree only for a page
    served by this very server (e.g. ``localhost`` while base_url says ``127.0.0.1``). Behind a
    proxy the ``Host`` is internal and only base_url matches what browsers send.
    """
    from airflow.configuration import conf

    found = []
    base_url = conf.get("api", "base_url", fallback="") or ""
    if base_url and (configured := _origin_of(base_url)):
        found.append(configured)
    own = _origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}/")
    if own and own not in found:
        found.append(own)
    return found


def check_origin(request: Request) -> None:
    """Refuse (403) a cookie-authenticated write whose Origin (or Referer) is not the API server's."""
    origin = request.headers.get("origin")
    header = "Origin"
    if origin is None:
        origin, header = request.headers.get("referer"), "Referer"
    if origin is None:
        raise HTTPException(
            403,
            "a write authenticated by the session cookie needs an Origin or Referer header "
            "(use an Authorization: Bearer token outside a browser)",
        )
    expected = expected_origins(request)
    if _origin_of(origin) not in expected:
        raise HTTPException(
            403,
            f"cross-site request refused: {header} {origin[:200]!r} is not the API server's "
            f"origin ({' or '.join(expected) or 'unknown'})",
        )


def is_json(request: Request) -> bool:
    """Return whether the request's Content-Type is ``application/json`` (parameters allowed)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def check_write(request: Request, *, has_body: bool) -> None:
    """Apply the CSRF rules of a write: origin for cookie requests, then JSON (415 otherwise).

    A write with a body always needs ``application/json``; a body-less write (enable, disable,
    delete) needs it when authenticated by cookie, so that no HTML form can make it.
    """
    by_cookie = authenticated_by_cookie(request)
    if by_cookie:
        check_origin(request)
    if (has_body or by_cookie) and not is_json(request):
        found = request.headers.get("content-type")
        raise HTTPException(
            415,
            f"Content-Type must be application/json, got {found[:100]!r}"
            if found
            else "Content-Type must be application/json, got none",
        )
