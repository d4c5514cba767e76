"""Jenkins through its remote access API with ``python-jenkins``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import jenkins  # type: ignore[import-untyped]  # python-jenkins ships no types
import requests
from airflow.sdk import BaseHook

from mlwf_operators.hooks._errors import ConnectionConfigError, ExternalServiceError
from mlwf_operators.hooks._http import StatusRecorder, base_url, extras

T = TypeVar("T")


@dataclass(frozen=True)
class JenkinsBuild:
    """A finished build: its job, number, URL and result (SUCCESS, FAILURE, ABORTED, UNSTABLE…)."""

    job_name: str
    number: int
    url: str
    result: str


class JenkinsHook(BaseHook):
    """Talk to Jenkins.

    Connection (type ``mlwf_jenkins``): ``host`` (or a full ``http(s)://`` URL), ``port``,
    ``login`` the user and ``password`` its API token; extra ``{"scheme": "https", "timeout": s}``.
    """

    conn_name_attr = "jenkins_conn_id"
    default_conn_name = "mlwf_jenkins_default"
    conn_type = "mlwf_jenkins"
    hook_name = "Jenkins (mlwf)"

    def __init__(self, jenkins_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.jenkins_conn_id = jenkins_conn_id
        self._status = StatusRecorder()

    @cached_property
    def url(self) -> str:
        """The Jenkins base URL of the connection."""
        return base_url(
            self.get_connection(self.jenkins_conn_id),
            self.conn_type,
            default_port=None,
            default_scheme="http",
        )

    def get_conn(self) -> jenkins.Jenkins:
        """Return a ``jenkins.Jenkins`` client for the connection."""
        conn = self.get_connection(self.jenkins_conn_id)
        if bool(conn.login) != bool(conn.password):
            raise ConnectionConfigError(
                self.jenkins_conn_id,
                self.conn_type,
                "set both login and password (API token), or neither",
            )
        server = jenkins.Jenkins(
            self.url + "/",
            username=conn.login or None,
            password=conn.password or None,
            timeout=float(extras(conn, self.conn_type).get("timeout", 30)),
        )
        self._status.attach(server._session)
        return server

    @cached_property
    def client(self) -> jenkins.Jenkins:
        """The client, created on first use."""
        return self.get_conn()

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        self._status.reset()
        try:
            return call()
        except requests.ConnectionError as error:
            raise ExternalServiceError(
                "Jenkins", operation, f"cannot reach Jenkins at {self.url}: {error}", status=None
            ) from error
        except (jenkins.JenkinsException, requests.RequestException) as error:
            status = self._status.status
            detail = f"{status} {self._status.reason}".strip() if status else str(error)
            if isinstance(error, jenkins.NotFoundException):
                detail = f"not found ({error})"
            elif self._status.text and status is not None and status >= 400:
                detail += f": {_text_of(self._status.text)}"
            raise ExternalServiceError("Jenkins", operation, detail, status=status) from error

    # operations ----------------------------------------------------------------------------
    def trigger(self, job_name: str, parameters: dict[str, str] | None = None) -> int:
        """Queue a build of ``job_name`` (with ``parameters``); return the queue item number."""
        number: int = self._call(
            f"trigger job {job_name!r}", lambda: self.client.build_job(job_name, parameters or None)
        )
        return number

    def wait_for_build(
        self, job_name: str, queue_item: int, *, poll_interval: float, timeout: float
    ) -> JenkinsBuild:
        """Follow queue item ``queue_item`` to its build and wait until the build has a result."""
        deadline = time.monotonic() + timeout
        number: int | None = None
        while number is None:
            item = self._call(
                f"read queue item {queue_item} of job {job_name!r}",
                lambda: self.client.get_queue_item(queue_item),
            )
            if item.get("cancelled"):
                raise ExternalServiceError(
                    "Jenkins",
                    f"run job {job_name!r}",
                    f"queue item {queue_item} was cancelled",
                    status=None,
                )
            executable = item.get("executable")
            if executable:
                number = int(executable["number"])
                break
            self._sleep_or_timeout(
                deadline,
                job_name,
                timeout,
                f"queue item {queue_item} still waiting: {item.get('why')}",
                poll_interval,
            )
        while True:
            build = self._call(
                f"read build {job_name} #{number}",
                lambda: self.client.get_build_info(job_name, number),
            )
            if not build.get("building") and build.get("result"):
                return JenkinsBuild(job_name, number, str(build["url"]), str(build["result"]))
            self._sleep_or_timeout(
                deadline,
                job_name,
                timeout,
                f"build {build.get('url')} still running",
                poll_interval,
            )

    def console_tail(self, job_name: str, number: int, lines: int = 20) -> str:
        """Return the last ``lines`` lines of a build's console output ('' if unavailable)."""
        try:
            text: str = self.client.get_build_console_output(job_name, number)
        except (jenkins.JenkinsException, requests.RequestException):
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    @staticmethod
    def _sleep_or_timeout(
        deadline: float, job_name: str, timeout: float, state: str, interval: float
    ) -> None:
        if time.monotonic() + interval > deadline:
            raise ExternalServiceError(
                "Jenkins", f"run job {job_name!r}", f"timed out after {timeout} s; {state}"
            )
        time.sleep(interval)


def _text_of(body: str) -> str:
    """Return the readable part of a Jenkins error page (its title), or the body's start."""
    start, end = body.find("<title>"), body.find("</title>")
    if start != -1 and end > start:
        return body[start + 7 : end].strip()
    return body.strip()[:300]
