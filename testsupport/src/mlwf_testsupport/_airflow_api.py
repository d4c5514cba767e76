"""A small authenticated client of Airflow's REST API v2, for tests against a real instance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, Self, cast

import httpx

from mlwf_testsupport._poll import poll

#: DAG run states after which a run changes no more.
FINISHED_RUN_STATES = frozenset({"success", "failed"})
#: Items asked for per page; Airflow caps a page at ``[api] maximum_page_limit`` (100).
_PAGE = 100
#: How much of an error response's body an AirflowApiError quotes.
_BODY_EXCERPT = 1000


class ApiServer(Protocol):
    """What :meth:`AirflowApi.for_instance` needs: an ``EmbeddedInstance`` has both."""

    @property
    def url(self) -> str:
        """Base URL of the API server, e.g. ``http://127.0.0.1:8080``."""
        ...

    def api_token(self) -> str:
        """Return a JWT for the REST API."""
        ...


class AirflowApiError(Exception):
    """A request to the API server answered with a status outside 2xx."""

    def __init__(self, method: str, path: str, status_code: int, body: str) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.body = body
        excerpt = body if len(body) <= _BODY_EXCERPT else f"{body[:_BODY_EXCERPT]}..."
        super().__init__(f"{method} {path} answered {status_code}: {excerpt or '(empty body)'}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> AirflowApiError:
        """Describe ``response`` (its request's method and path with query, status, body)."""
        request = response.request
        return cls(
            request.method,
            request.url.raw_path.decode("ascii"),
            response.status_code,
            response.text,
        )


class AirflowApi:
    """An authenticated client of Airflow's REST API v2 (``{url}/api/v2``).

    The JSON methods raise :class:`AirflowApiError` on any non-2xx answer. For a request whose
    status the test itself checks (a 404, a refused 400), use :attr:`client` directly.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        #: Base URL of the API server (the UI and plugins live below it too).
        self.url = url.rstrip("/")
        #: The ``Authorization`` header every request carries.
        self.headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        #: The underlying client, based at ``{url}/api/v2``: for requests checked by status code.
        self.client = self.client_for("/api/v2")

    @classmethod
    def for_instance(cls, instance: ApiServer, *, timeout: float = 60.0) -> Self:
        """Return a client of ``instance`` (anything with ``.url`` and ``.api_token()``)."""
        return cls(instance.url, instance.api_token(), timeout=timeout)

    def client_for(self, prefix: str) -> httpx.Client:
        """Return an httpx client for another route prefix of the server, with the same token."""
        return httpx.Client(
            base_url=f"{self.url}/{prefix.strip('/')}", headers=self.headers, timeout=self._timeout
        )

    def close(self) -> None:
        """Close the connection pool of :attr:`client`."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # plain requests ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send a request below ``/api/v2`` and return the parsed JSON answer (None if empty)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self.client.request(method, path, params=query, json=json)
        if not response.is_success:
            raise AirflowApiError.from_response(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params`` (None values left out) and return the JSON."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        """POST ``json`` to ``path`` and return the JSON answer."""
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any) -> Any:
        """PATCH ``path`` with ``json`` and return the JSON answer."""
        return self.request("PATCH", path, json=json)

    def _all(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Return every item of a paginated collection (``{key: [...], "total_entries": n}``)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=_PAGE, offset=len(items), **params)
            items.extend(page[key])
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    # DAGs ----------------------------------------------------------------------------------
    def wait_dag(
        self,
        dag_id: str,
        *,
        timeout: float = 180.0,
        interval: float = 1.0,
        parsed_since: datetime | None = None,
    ) -> dict[str, Any]:
        """Wait until GET /dags/{dag_id} answers 200 and return the DAG.

        With ``parsed_since`` (timezone-aware) wait also for a parse after that moment and a DAG
        that is not stale: after a restart the DAG table answers before any parse.
        """

        def probe() -> dict[str, Any] | str:
            response = self.client.get(f"/dags/{dag_id}")
            if response.status_code in (401, 403):  # waiting will not help
                raise AirflowApiError.from_response(response)
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            dag: dict[str, Any] = response.json()
            if parsed_since is not None:
                stamp = dag.get("last_parsed_time")
                parsed = stamp is not None and datetime.fromisoformat(stamp) >= parsed_since
                if not parsed or dag.get("is_stale"):
                    return f"last parsed at {stamp}, is_stale={dag.get('is_stale')}"
            return dag

        what = f"DAG {dag_id}"
        if parsed_since is not None:
            what += f" to be parsed after {parsed_since.isoformat()}"
        found = poll(probe, timeout, what, interval, until=lambda v: isinstance(v, dict))
        return cast(dict[str, Any], found)

    def unpause(self, dag_id: str, *, timeout: float = 180.0) -> None:
        """Wait until the DAG is parsed (see :meth:`wait_dag`), then unpause it."""
        self.wait_dag(dag_id, timeout=timeout)
        self.patch(f"/dags/{dag_id}", {"is_paused": False})

    def pause(self, dag_id: str) -> None:
        """Pause the DAG."""
        self.patch(f"/dags/{dag_id}", {"is_paused": True})

    # DAG runs ------------------------------------------------------------------------------
    def trigger(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, *, unpause: bool = True
    ) -> str:
        """Trigger a run (no logical date) with ``conf`` and return its run id.

        By default the DAG is first awaited and unpaused (:meth:`unpause`); ``unpause=False``
        triggers it as it is.
        """
        if unpause:
            self.unpause(dag_id)
        run = self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Return the DAG run document."""
        return cast(dict[str, Any], self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def run_state(self, dag_id: str, run_id: str) -> str:
        """Return the state of the run (queued, running, success, failed)."""
        return str(self.run(dag_id, run_id)["state"])

    def wait_run(
        self, dag_id: str, run_id: str, *, timeout: float = 300.0, interval: float = 1.0
    ) -> str:
        """Wait until the run has finished and return its state (``success`` or ``failed``)."""
        return poll(
            lambda: self.run_state(dag_id, run_id),
            timeout,
            f"run {run_id} of {dag_id} to finish",
            interval,
            until=lambda state: state in FINISHED_RUN_STATES,
        )

    def runs(
        self, dag_id: str, *, run_id_prefix: str = "", run_id_suffix: str = ""
    ) -> list[dict[str, Any]]:
        """Return every run of the DAG whose run id starts and ends as given, oldest first."""
        return [
            run
            for run in self._all(f"/dags/{dag_id}/dagRuns", "dag_runs")
            if run["dag_run_id"].startswith(run_id_prefix)
            and run["dag_run_id"].endswith(run_id_suffix)
        ]

    def clear_run(self, dag_id: str, run_id: str, *, only_failed: bool = False) -> Any:
        """Clear the task instances of a run (all of them by default) so that they run again."""
        return self.post(
            f"/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "only_failed": only_failed},
        )

    # task instances ------------------------------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Return every task instance of the run (each map index of a mapped task separately)."""
        return self._all(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, Any]:
        """Return one task instance (``map_index`` for one instance of a mapped task)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return cast(dict[str, Any], self.get(path))

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
        """Return the state of every task instance, keyed by ``(task_id, map_index)``."""
        return {
            (ti["task_id"], ti["map_index"]): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        *,
        map_index: int = -1,
        deserialize: bool = False,
    ) -> Any:
        """Return the value of an XCom entry (``deserialize=True``: Airflow deserializes it)."""
        return self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            map_index=map_index if map_index >= 0 else None,
            deserialize=deserialize or None,
        )["value"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, *, map_index: int = -1
    ) -> str:
        """Return the full log of one try as JSON text, so that every structured field is searchable."""
        data = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            full_content=True,
            map_index=map_index if map_index >= 0 else None,
        )
        return json.dumps(data["content"])
