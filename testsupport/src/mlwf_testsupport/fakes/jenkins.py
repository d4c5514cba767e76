"""A Jenkins remote access API fake: jobs, the build queue, builds and CSRF crumbs.

``/api/json``, ``/crumbIssuer/api/json``, ``POST /job/<name>/build`` and
``/buildWithParameters`` (201 + ``Location: <url>/queue/item/<n>/``),
``/queue/item/<n>/api/json`` (``executable.number`` once started), ``/job/<name>/api/json``,
``/job/<name>/<n>/api/json`` (``building``, ``result``) and ``/consoleText``. A build leaves the
queue after ``queue_polls`` reads of its queue item and finishes after ``build_polls`` reads of
its build, so tests drive time by polling, as a real client does. 404 for unknown jobs, 401 on
bad credentials, 403 without a crumb on POST.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlwf_testsupport.fakes._http import FakeHttpServer, Request, Response


@dataclass
class FakeJob:
    """A job definition: its parameters and what its builds end with."""

    name: str
    parameters: dict[str, str] = field(default_factory=dict)
    result: str = "SUCCESS"
    queue_polls: int = 1
    build_polls: int = 1
    console: str = "Started by remote API\nFinished: {result}\n"
    builds: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _QueueItem:
    number: int
    job: FakeJob
    params: dict[str, str]
    polls: int = 0
    build: dict[str, Any] | None = None


class FakeJenkins(FakeHttpServer):
    """In-memory Jenkins controller; ``users`` maps user names to API tokens."""

    system = "Jenkins"

    def __init__(self, *, users: dict[str, str] | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.users = users if users is not None else {"airflow": "api-token"}
        self.jobs: dict[str, FakeJob] = {}
        self.crumb = secrets.token_hex(16)
        self._queue: dict[int, _QueueItem] = {}
        self._next_queue = 41

    def add_job(self, name: str, **settings: Any) -> FakeJob:
        """Define job ``name`` (see :class:`FakeJob` for ``settings``) and return it."""
        job = FakeJob(name, **settings)
        self.jobs[name] = job
        return job

    # protocol ----------------------------------------------------------------------------
    def error_response(self, status: int, message: str, request: Request) -> Response:
        body = f"<html><head><title>Error {status} {message}</title></head><body><h2>HTTP ERROR {status} {message}</h2></body></html>"
        return Response(
            status,
            body.encode(),
            {"Content-Type": "text/html;charset=utf-8", "X-Jenkins": "2.479.1"},
        )

    def handle(self, request: Request) -> Response:
        header = request.header("Authorization") or ""
        if header.startswith("Basic "):
            user, _, token = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(user) != token:
                return self.error_response(401, f"Invalid password/token for user: {user}", request)
        elif self.users:
            return self.error_response(403, "Authentication required", request)
        path = request.path
        with self._lock:
            if request.method == "POST" and request.header("Jenkins-Crumb") != self.crumb:
                return self.error_response(
                    403, "No valid crumb was included in the request", request
                )
            for method, pattern, handler in _ROUTES:
                match = re.fullmatch(pattern, path)
                if match and method == request.method:
                    return handler(self, request, *match.groups())
        return self.error_response(404, "Not Found", request)

    def _ok(self, payload: Any) -> Response:
        return Response.json(200, payload, {"X-Jenkins": "2.479.1"})

    def _job(self, name: str) -> FakeJob | None:
        return self.jobs.get(name)

    def _job_json(self, job: FakeJob) -> dict[str, Any]:
        last = job.builds[-1] if job.builds else None
        return {
            "_class": "hudson.model.FreeStyleProject",
            "name": job.name,
            "fullName": job.name,
            "url": f"{self.url}/job/{job.name}/",
            "buildable": True,
            "color": "blue" if not last or last["result"] == "SUCCESS" else "red",
            "nextBuildNumber": len(job.builds) + 1,
            "lastBuild": {"number": last["number"], "url": last["url"]} if last else None,
            "property": [
                {
                    "_class": "hudson.model.ParametersDefinitionProperty",
                    "parameterDefinitions": [
                        {
                            "name": k,
                            "defaultParameterValue": {"value": v},
                            "type": "StringParameterDefinition",
                        }
                        for k, v in job.parameters.items()
                    ],
                }
            ]
            if job.parameters
            else [],
        }

    def _root(self, request: Request) -> Response:
        return self._ok(
            {
                "_class": "hudson.model.Hudson",
                "mode": "NORMAL",
                "nodeDescription": "the Jenkins controller's built-in node",
                "numExecutors": 2,
                "useCrumbs": True,
                "useSecurity": True,
                "jobs": [
                    {
                        "_class": "hudson.model.FreeStyleProject",
                        "name": j.name,
                        "url": f"{self.url}/job/{j.name}/",
                    }
                    for j in self.jobs.values()
                ],
            }
        )

    def _crumb(self, request: Request) -> Response:
        return self._ok(
            {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": self.crumb,
                "crumbRequestField": "Jenkins-Crumb",
            }
        )

    def _job_info(self, request: Request, name: str) -> Response:
        job = self._job(name)
        if job is None:
            return self.error_response(404, "Not Found", request)
        return self._ok(self._job_json(job))

    def _enqueue(self, request: Request, name: str, with_parameters: bool) -> Response:
        job = self._job(name)
        if job is None:
            return self.error_response(404, "Not Found", request)
        if with_parameters and not job.parameters:
            return self.error_response(400, f"{name} is not parameterized", request)
        if not with_parameters and job.parameters:
            return self.error_response(400, "Nothing is submitted", request)
        submitted = dict(request.query)
        if request.body and "form-urlencoded" in (request.header("Content-Type") or ""):
            from urllib.parse import parse_qsl

            submitted.update(parse_qsl(request.body.decode()))
        submitted.pop("token", None)
        params = {
            k: submitted.get(k, v) for k, v in job.parameters.items()
        }  # unknown ones are ignored
        number = self._next_queue
        self._next_queue += 1
        self._queue[number] = _QueueItem(number, job, params)
        return Response(
            201, b"", {"Location": f"{self.url}/queue/item/{number}/", "X-Jenkins": "2.479.1"}
        )

    def _build(self, request: Request, name: str) -> Response:
        return self._enqueue(request, name, with_parameters=False)

    def _build_with_parameters(self, request: Request, name: str) -> Response:
        return self._enqueue(request, name, with_parameters=True)

    def _queue_item(self, request: Request, number: str) -> Response:
        item = self._queue.get(int(number))
        if item is None:
            return self.error_response(404, "Not Found", request)
        item.polls += 1
        task = {
            "_class": "hudson.model.FreeStyleProject",
            "name": item.job.name,
            "url": f"{self.url}/job/{item.job.name}/",
        }
        payload: dict[str, Any] = {
            "id": item.number,
            "task": task,
            "params": "".join(f"\n{k}={v}" for k, v in item.params.items()),
            "actions": [
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [{"name": k, "value": v} for k, v in item.params.items()],
                }
            ],
            "inQueueSince": int(time.time() * 1000),
        }
        if item.build is None and item.polls > item.job.queue_polls:
            build_number = len(item.job.builds) + 1
            item.build = {
                "_class": "hudson.model.FreeStyleBuild",
                "number": build_number,
                "url": f"{self.url}/job/{item.job.name}/{build_number}/",
                "building": True,
                "result": None,
                "polls": 0,
                "params": item.params,
                "timestamp": int(time.time() * 1000),
            }
            item.job.builds.append(item.build)
        if item.build is None:
            payload.update(
                {
                    "_class": "hudson.model.Queue$WaitingItem",
                    "blocked": False,
                    "buildable": True,
                    "why": "Waiting for next available executor",
                }
            )
        else:
            payload.update(
                {
                    "_class": "hudson.model.Queue$LeftItem",
                    "cancelled": False,
                    "executable": {
                        "_class": "hudson.model.FreeStyleBuild",
                        "number": item.build["number"],
                        "url": item.build["url"],
                    },
                }
            )
        return self._ok(payload)

    def _find_build(self, name: str, number: str) -> dict[str, Any] | None:
        job = self._job(name)
        if job is None:
            return None
        if number == "lastBuild":
            return job.builds[-1] if job.builds else None
        return next((b for b in job.builds if str(b["number"]) == number), None)

    def _build_info(self, request: Request, name: str, number: str) -> Response:
        build = self._find_build(name, number)
        if build is None:
            return self.error_response(404, "Not Found", request)
        job = self.jobs[name]
        build["polls"] += 1
        if build["building"] and build["polls"] > job.build_polls:
            build["building"] = False
            build["result"] = job.result
        return self._ok(
            {
                "_class": build["_class"],
                "number": build["number"],
                "url": build["url"],
                "building": build["building"],
                "result": build["result"],
                "duration": 0 if build["building"] else 1234,
                "timestamp": build["timestamp"],
                "displayName": f"#{build['number']}",
                "fullDisplayName": f"{name} #{build['number']}",
                "actions": [
                    {
                        "_class": "hudson.model.ParametersAction",
                        "parameters": [{"name": k, "value": v} for k, v in build["params"].items()],
                    }
                ],
            }
        )

    def _console(self, request: Request, name: str, number: str) -> Response:
        build = self._find_build(name, number)
        if build is None:
            return self.error_response(404, "Not Found", request)
        text = self.jobs[name].console.format(result=build["result"] or "")
        return Response(200, text.encode(), {"Content-Type": "text/plain;charset=UTF-8"})


_ROUTES: list[tuple[str, str, Callable[..., Response]]] = [
    ("GET", r"/api/json", FakeJenkins._root),
    ("GET", r"/crumbIssuer/api/json", FakeJenkins._crumb),
    ("GET", r"/job/([^/]+)/api/json", FakeJenkins._job_info),
    ("POST", r"/job/([^/]+)/build", FakeJenkins._build),
    ("POST", r"/job/([^/]+)/buildWithParameters", FakeJenkins._build_with_parameters),
    ("GET", r"/queue/item/(\d+)/api/json", FakeJenkins._queue_item),
    ("GET", r"/job/([^/]+)/(\d+|lastBuild)/api/json", FakeJenkins._build_info),
    ("GET", r"/job/([^/]+)/(\d+|lastBuild)/consoleText", FakeJenkins._console),
]
