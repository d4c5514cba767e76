"""A JIRA Server REST API v2 fake: the endpoints the ``jira`` client library calls.

``/rest/api/2/serverInfo``, ``/field``, ``/project/<key>``, ``/issuetype``, ``POST /issue``,
``GET``/``PUT /issue/<key>``, ``GET``/``POST /issue/<key>/comment``, ``GET``/``POST
/issue/<key>/transitions`` over a small workflow (To Do → In Progress → In Review → Done or
Rejected). Authentication: HTTP basic (user/password) or a bearer personal access token. Errors
use JIRA's ``{"errorMessages": [...], "errors": {...}}`` body with 400/401/404.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import re
from collections.abc import Callable
from typing import Any

from mlwf_testsupport.fakes._http import FakeHttpServer, Request, Response

API = "/rest/api/2"

STATUSES = {
    "To Do": ("1", "new", "To Do"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "In Review": ("10001", "indeterminate", "In Progress"),
    "Done": ("10002", "done", "Done"),
    "Rejected": ("10003", "done", "Done"),
}
#: current status -> [(transition id, transition name, target status)]
WORKFLOW = {
    "To Do": [("11", "Start Progress", "In Progress")],
    "In Progress": [("21", "Send to Review", "In Review"), ("31", "Stop Progress", "To Do")],
    "In Review": [("41", "Approve", "Done"), ("51", "Reject", "Rejected")],
    "Done": [("61", "Reopen", "To Do")],
    "Rejected": [("61", "Reopen", "To Do")],
}
ISSUE_TYPES = {"Task": "10002", "Bug": "10004", "Story": "10001"}
FIELDS = [
    ("summary", "Summary", False, "string"),
    ("description", "Description", False, "string"),
    ("labels", "Labels", False, "array"),
    ("project", "Project", False, "project"),
    ("issuetype", "Issue Type", False, "issuetype"),
    ("status", "Status", False, "status"),
    ("priority", "Priority", False, "priority"),
    ("customfield_10100", "Model Version", True, "string"),
]
_SETTABLE = {
    "summary",
    "description",
    "labels",
    "priority",
    "customfield_10100",
    "project",
    "issuetype",
}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeJira(FakeHttpServer):
    """In-memory JIRA Server with projects, issues, comments and a workflow.

    ``users`` maps user names to passwords (basic auth); ``tokens`` holds valid personal access
    tokens (bearer auth). Anonymous requests get 401.
    """

    system = "JIRA"

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tokens: set[str] | None = None,
        projects: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.users = users if users is not None else {"airflow": "secret"}
        self.tokens = tokens if tokens is not None else set()
        self.projects = projects if projects is not None else {"ML": "Machine Learning"}
        self.issues: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10000)
        self._counters: dict[str, itertools.count[int]] = {}

    # direct access for tests -------------------------------------------------------------
    def status_of(self, key: str) -> str:
        """Return the status name of issue ``key``."""
        return str(self.issues[key]["fields"]["status"]["name"])

    # protocol ----------------------------------------------------------------------------
    def error_response(self, status: int, message: str, request: Request) -> Response:
        return Response.json(status, {"errorMessages": [message], "errors": {}})

    def _errors(self, status: int, errors: dict[str, str]) -> Response:
        return Response.json(status, {"errorMessages": [], "errors": errors})

    def _authenticated(self, request: Request) -> str | None:
        header = request.header("Authorization") or ""
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user if self.users.get(user) == password else None
        if header.startswith("Bearer "):
            return "token-user" if header[7:] in self.tokens else None
        return None

    def handle(self, request: Request) -> Response:
        user = self._authenticated(request)
        if user is None:
            response = self.error_response(
                401,
                "You are not authenticated. Authentication required to perform this operation.",
                request,
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
            response.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            return response
        if not request.path.startswith(API + "/"):
            return self.error_response(404, "null for uri: " + request.path, request)
        route = request.path[len(API) :].rstrip("/")
        with self._lock:
            for (method, pattern), handler in _ROUTES.items():
                match = re.fullmatch(pattern, route)
                if match and method == request.method:
                    return handler(self, request, user, *match.groups())
        return self.error_response(404, "null for uri: " + self.url + request.path, request)

    # resources -----------------------------------------------------------------------------
    def _status_json(self, name: str) -> dict[str, Any]:
        status_id, category_key, category_name = STATUSES[name]
        return {
            "self": f"{self.url}{API}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": {"key": category_key, "name": category_name},
        }

    def _issuetype_json(self, name: str) -> dict[str, Any]:
        type_id = ISSUE_TYPES[name]
        return {
            "self": f"{self.url}{API}/issuetype/{type_id}",
            "id": type_id,
            "name": name,
            "subtask": False,
        }

    def _project_json(self, key: str) -> dict[str, Any]:
        project_id = str(10000 + sorted(self.projects).index(key))
        return {
            "self": f"{self.url}{API}/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": self.projects[key],
            "issueTypes": [self._issuetype_json(n) for n in ISSUE_TYPES],
        }

    def _find_project(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        for key in self.projects:
            if value.get("key") == key or value.get("id") == self._project_json(key)["id"]:
                return key
        return None

    def _find_issue(self, key_or_id: str) -> dict[str, Any] | None:
        for issue in self.issues.values():
            if key_or_id in (issue["key"], issue["id"]):
                return issue
        return None

    def _issue_missing(self) -> Response:
        return Response.json(404, {"errorMessages": ["Issue Does Not Exist"], "errors": {}})

    def _server_info(self, request: Request, user: str) -> Response:
        return Response.json(
            200,
            {
                "baseUrl": self.url,
                "version": "9.12.2",
                "versionNumbers": [9, 12, 2],
                "deploymentType": "Server",
                "buildNumber": 9120002,
                "buildDate": "2024-02-01T00:00:00.000+0000",
                "serverTime": _now(),
                "scmInfo": "fake",
                "serverTitle": "Fake JIRA",
            },
        )

    def _fields(self, request: Request, user: str) -> Response:
        return Response.json(
            200,
            [
                {
                    "id": fid,
                    "name": name,
                    "custom": custom,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [fid],
                    "schema": {"type": ftype, "system": fid}
                    if not custom
                    else {"type": ftype, "customId": 10100},
                }
                for fid, name, custom, ftype in FIELDS
            ],
        )

    def _project(self, request: Request, user: str, key: str) -> Response:
        if key not in self.projects:
            return self.error_response(404, f"No project could be found with key '{key}'.", request)
        return Response.json(200, self._project_json(key))

    def _issuetypes(self, request: Request, user: str) -> Response:
        return Response.json(200, [self._issuetype_json(n) for n in ISSUE_TYPES])

    def _validate_fields(self, fields: dict[str, Any]) -> dict[str, str]:
        errors = {}
        for name in fields:
            if name not in _SETTABLE:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        if "labels" in fields and not (
            isinstance(fields["labels"], list)
            and all(isinstance(x, str) and " " not in x for x in fields["labels"])
        ):
            errors["labels"] = "The label must be a list of strings without spaces."
        return errors

    def _create_issue(self, request: Request, user: str) -> Response:
        body = request.json()
        fields = dict(body.get("fields") or {}) if isinstance(body, dict) else {}
        errors = self._validate_fields(fields)
        project = self._find_project(fields.get("project"))
        if project is None:
            errors["project"] = "project is required"
        issuetype = fields.get("issuetype")
        type_name = None
        if isinstance(issuetype, dict):
            type_name = next(
                (
                    n
                    for n, i in ISSUE_TYPES.items()
                    if issuetype.get("name") == n or issuetype.get("id") == i
                ),
                None,
            )
        if type_name is None:
            errors["issuetype"] = "valid issue type is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return self._errors(400, errors)
        assert project is not None and type_name is not None
        counter = self._counters.setdefault(project, itertools.count(1))
        key = f"{project}-{next(counter)}"
        issue_id = str(next(self._ids))
        issue = {
            "id": issue_id,
            "key": key,
            "self": f"{self.url}{API}/issue/{issue_id}",
            "fields": {
                "summary": fields["summary"],
                "description": fields.get("description"),
                "labels": list(fields.get("labels") or []),
                "customfield_10100": fields.get("customfield_10100"),
                "priority": fields.get("priority"),
                "project": self._project_json(project),
                "issuetype": self._issuetype_json(type_name),
                "status": self._status_json("To Do"),
                "reporter": {"name": user, "displayName": user},
                "created": _now(),
                "updated": _now(),
                "comment": {"comments": [], "maxResults": 0, "total": 0, "startAt": 0},
            },
        }
        self.issues[key] = issue
        return Response.json(201, {"id": issue_id, "key": key, "self": issue["self"]})

    def _get_issue(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        return Response.json(200, {"expand": "renderedFields,names,schema,transitions", **issue})

    def _edit_issue(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        body = request.json() or {}
        fields = dict(body.get("fields") or {})
        errors = self._validate_fields(fields)
        for name in ("project", "issuetype"):
            if name in fields:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        if "summary" in fields and not fields["summary"]:
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return self._errors(400, errors)
        issue["fields"].update(fields)
        for name, operations in (body.get("update") or {}).items():
            for operation in operations:
                if name == "comment" and "add" in operation:
                    self._add_comment(issue, user, operation["add"]["body"])
                elif name == "labels":
                    labels = issue["fields"]["labels"]
                    if "add" in operation and operation["add"] not in labels:
                        labels.append(operation["add"])
                    if "remove" in operation and operation["remove"] in labels:
                        labels.remove(operation["remove"])
                    if "set" in operation:
                        issue["fields"]["labels"] = list(operation["set"])
                else:
                    return self._errors(
                        400,
                        {
                            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                        },
                    )
        issue["fields"]["updated"] = _now()
        return Response(204)

    def _add_comment(self, issue: dict[str, Any], user: str, body: str) -> dict[str, Any]:
        comments = issue["fields"]["comment"]
        comment_id = str(next(self._ids))
        comment = {
            "self": f"{issue['self']}/comment/{comment_id}",
            "id": comment_id,
            "author": {"name": user, "displayName": user},
            "body": body,
            "created": _now(),
            "updated": _now(),
        }
        comments["comments"].append(comment)
        comments["total"] = comments["maxResults"] = len(comments["comments"])
        return comment

    def _post_comment(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        body = request.json() or {}
        if not isinstance(body.get("body"), str) or not body["body"].strip():
            return self._errors(400, {"comment": "Comment body can not be empty!"})
        return Response.json(201, self._add_comment(issue, user, body["body"]))

    def _get_comments(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        return Response.json(200, issue["fields"]["comment"])

    def _transitions_of(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": tid,
                "name": name,
                "to": self._status_json(target),
                "hasScreen": False,
                "isGlobal": False,
            }
            for tid, name, target in WORKFLOW[issue["fields"]["status"]["name"]]
        ]

    def _get_transitions(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        return Response.json(
            200, {"expand": "transitions", "transitions": self._transitions_of(issue)}
        )

    def _post_transition(self, request: Request, user: str, key: str) -> Response:
        issue = self._find_issue(key)
        if issue is None:
            return self._issue_missing()
        body = request.json() or {}
        wanted = str((body.get("transition") or {}).get("id"))
        for transition in self._transitions_of(issue):
            if transition["id"] == wanted:
                issue["fields"]["status"] = transition["to"]
                for operation in (body.get("update") or {}).get("comment", []):
                    self._add_comment(issue, user, operation["add"]["body"])
                issue["fields"]["updated"] = _now()
                return Response(204)
        return self.error_response(
            400, f"Transition id '{wanted}' is not valid for this issue.", request
        )


_ROUTES: dict[tuple[str, str], Callable[..., Response]] = {
    ("GET", r"/serverInfo"): FakeJira._server_info,
    ("GET", r"/field"): FakeJira._fields,
    ("GET", r"/project/([^/]+)"): FakeJira._project,
    ("GET", r"/issuetype"): FakeJira._issuetypes,
    ("POST", r"/issue"): FakeJira._create_issue,
    ("GET", r"/issue/([^/]+)"): FakeJira._get_issue,
    ("PUT", r"/issue/([^/]+)"): FakeJira._edit_issue,
    ("POST", r"/issue/([^/]+)/comment"): FakeJira._post_comment,
    ("GET", r"/issue/([^/]+)/comment"): FakeJira._get_comments,
    ("GET", r"/issue/([^/]+)/transitions"): FakeJira._get_transitions,
    ("POST", r"/issue/([^/]+)/transitions"): FakeJira._post_transition,
}
