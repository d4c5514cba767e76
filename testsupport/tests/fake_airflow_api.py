"""A loopback fake of the few Airflow REST API v2 routes that AirflowApi speaks.

Shapes follow Airflow 3's API: ``{"detail": ...}`` errors, 401 without a valid bearer token,
collections as ``{<items>: [...], "total_entries": n}`` paginated by ``limit``/``offset`` (capped
at :attr:`FakeAirflow.max_page`, as ``[api] maximum_page_limit`` caps the real one). Time is driven
by requests: a DAG appears after some GETs (its parse), a run finishes after some reads.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Self

from mlwf_testsupport.fakes import FakeHttpServer, Request, Response

_RUNS = r"/api/v2/dags/(?P<dag>[^/]+)/dagRuns"
_TI = _RUNS + r"/(?P<run>[^/]+)/taskInstances/(?P<task>[^/]+)"


@dataclass
class FakeDag:
    """A DAG of the fake and how it behaves."""

    dag_id: str
    #: GETs of /dags/{dag_id} answered 404 before the DAG is "parsed".
    appears_after: int = 0
    is_paused: bool = True
    last_parsed_time: str = "2025-01-01T00:00:00Z"
    is_stale: bool = False
    #: Reads of a run's state answered "running" before it finishes in ``final_state``.
    reads_to_finish: int = 1
    final_state: str = "success"
    gets: int = 0


class FakeAirflow(FakeHttpServer):
    """The fake's state; the test arranges it and reads :attr:`requests` and :attr:`bodies` back."""

    system = "airflow"

    def __init__(self, token: str = "secret-token", max_page: int = 3) -> None:
        super().__init__()
        self.token = token
        self.max_page = max_page
        self.dags: dict[str, FakeDag] = {}
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.task_instances: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.xcoms: dict[tuple[str, str, str, str, int], Any] = {}
        self.logs: dict[tuple[str, str, str, int, int], list[Any]] = {}
        #: The JSON body of every request served (None without one), in the order of ``requests``.
        self.bodies: list[Any] = []
        self._state = threading.Lock()

    def start(self) -> Self:
        super().start()
        # FakeHttpServer's handler answers no PATCH (501); Airflow's API pauses DAGs with one.
        assert self._server is not None
        handler: Any = self._server.RequestHandlerClass
        handler.do_PATCH = handler.do_GET
        return self

    def api_token(self) -> str:
        """Return the token the fake accepts (so that the fake is also an "instance")."""
        return self.token

    # arranging -----------------------------------------------------------------------------
    def add_dag(self, dag_id: str, **behaviour: Any) -> FakeDag:
        self.dags[dag_id] = FakeDag(dag_id, **behaviour)
        return self.dags[dag_id]

    def add_run(self, dag_id: str, run_id: str, state: str = "success") -> None:
        self.runs[(dag_id, run_id)] = {"dag_id": dag_id, "dag_run_id": run_id, "state": state}

    # serving -------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, request: Request) -> Response:
        return Response.json(status, {"detail": message})

    def handle(self, request: Request) -> Response:
        with self._state:
            self.bodies.append(request.json())
            if request.header("Authorization") != f"Bearer {self.token}":
                return self.error_response(401, "Not authenticated", request)
            status, payload = self._route(
                request.method, request.path, request.query, request.json()
            )
        return Response.json(status, payload)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/mlwf/echo/headers":  # a plugin route, for AirflowApi.client_for
            return 200, {"authorization": f"Bearer {self.token}"}
        if m := re.fullmatch(r"/api/v2/dags/(?P<dag>[^/]+)", path):
            return self._dag(method, m["dag"], body)
        if m := re.fullmatch(r"/api/v2/dags/(?P<dag>[^/]+)/clearTaskInstances", path):
            return 200, {"task_instances": [], "total_entries": 0}
        if m := re.fullmatch(_RUNS, path):
            if method == "POST":
                return self._trigger(m["dag"], body)
            runs = [r for (dag, _), r in self.runs.items() if dag == m["dag"]]
            return 200, self._page("dag_runs", runs, query)
        if m := re.fullmatch(_RUNS + r"/(?P<run>[^/]+)", path):
            return self._run(m["dag"], m["run"])
        if m := re.fullmatch(_RUNS + r"/(?P<run>[^/]+)/taskInstances", path):
            tis = self.task_instances.get((m["dag"], m["run"]), [])
            return 200, self._page("task_instances", tis, query)
        if m := re.fullmatch(_TI + r"/xcomEntries/(?P<key>[^/]+)", path):
            index = int(query.get("map_index", "-1"))
            key = (m["dag"], m["run"], m["task"], m["key"], index)
            if key not in self.xcoms:
                return 404, {"detail": f"XCom entry with key: `{m['key']}` not found"}
            value = self.xcoms[key]
            if query.get("deserialize") == "true" and isinstance(value, dict | list):
                value = json.dumps(value)  # the real API stringifies a deserialized value
            return 200, {"key": m["key"], "task_id": m["task"], "map_index": index, "value": value}
        if m := re.fullmatch(_TI + r"/logs/(?P<try>\d+)", path):
            key = (m["dag"], m["run"], m["task"], int(m["try"]), int(query.get("map_index", "-1")))
            content = self.logs.get(key, [])
            if query.get("full_content") != "true":
                content = content[:1]  # only the first chunk, with a continuation token
            return 200, {"content": content, "continuation_token": None}
        if m := re.fullmatch(_TI + r"(?:/(?P<index>\d+))?", path):
            index = int(m["index"] or -1)
            for ti in self.task_instances.get((m["dag"], m["run"]), []):
                if ti["task_id"] == m["task"] and ti["map_index"] == index:
                    return 200, ti
            return 404, {"detail": "Task instance not found"}
        return 404, {"detail": "Not Found"}

    def _dag(self, method: str, dag_id: str, body: Any) -> tuple[int, Any]:
        dag = self.dags.get(dag_id)
        if dag is not None and method == "GET":
            dag.gets += 1
        if dag is None or (dag.gets <= dag.appears_after and method == "GET"):
            return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found"}
        if method == "PATCH":
            dag.is_paused = bool(body["is_paused"])
        return 200, {
            "dag_id": dag_id,
            "is_paused": dag.is_paused,
            "last_parsed_time": dag.last_parsed_time,
            "is_stale": dag.is_stale,
        }

    def _trigger(self, dag_id: str, body: Any) -> tuple[int, Any]:
        if dag_id not in self.dags:
            return 404, {"detail": f"The Dag with ID: `{dag_id}` was not found"}
        if set(body) - {"logical_date", "conf"}:
            return 422, {"detail": [{"msg": "Extra inputs are not permitted"}]}
        run_id = f"manual__{len(self.runs)}"
        run = {"dag_id": dag_id, "dag_run_id": run_id, "state": "queued", "conf": body["conf"]}
        self.runs[(dag_id, run_id)] = {**run, "reads": 0}
        return 200, run

    def _run(self, dag_id: str, run_id: str) -> tuple[int, Any]:
        run = self.runs.get((dag_id, run_id))
        if run is None:
            return 404, {
                "detail": f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
            }
        if "reads" in run:  # a triggered run: running, then finished after some reads
            dag = self.dags[dag_id]
            run["reads"] += 1
            done = run["reads"] > dag.reads_to_finish
            run["state"] = dag.final_state if done else "running"
        return 200, {k: v for k, v in run.items() if k != "reads"}

    def _page(self, key: str, items: list[dict[str, Any]], query: dict[str, str]) -> Any:
        offset = int(query.get("offset", "0"))
        limit = min(int(query.get("limit", "50")), self.max_page)
        page = [
            {k: v for k, v in i.items() if k != "reads"} for i in items[offset : offset + limit]
        ]
        return {key: page, "total_entries": len(items)}
