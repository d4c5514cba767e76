"""Operator that runs a Jenkins job and waits for its result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from airflow.sdk import BaseOperator
from mlwf_types import typed

from mlwf_operators.hooks._errors import ExternalServiceError, require_text
from mlwf_operators.hooks.jenkins import JenkinsHook


class JenkinsBuildResult(TypedDict):
    """The XCom a :class:`JenkinsJobOperator` returns."""

    job_name: str
    number: int
    url: str
    result: str


@typed(
    inputs={
        "job_name": str,
        "parameters": dict[str, str],
        "poll_interval": float,
        "timeout": float,
    },
    outputs={"return_value": JenkinsBuildResult},
)
class JenkinsJobOperator(BaseOperator):
    """Trigger a Jenkins job with parameters, wait for its build and fail unless the result is allowed."""

    template_fields: Sequence[str] = ("job_name", "parameters")
    ui_color = "#f0d6d6"

    def __init__(
        self,
        *,
        job_name: str,
        parameters: dict[str, str] | None = None,
        jenkins_conn_id: str = JenkinsHook.default_conn_name,
        poll_interval: float = 5.0,
        timeout: float = 3600.0,
        allowed_results: Sequence[str] = ("SUCCESS",),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if poll_interval <= 0 or timeout <= 0:
            raise ValueError(
                f"task {kwargs.get('task_id')!r}: poll_interval and timeout must be positive, got {poll_interval!r} and {timeout!r}"
            )
        self.job_name = job_name
        self.parameters = parameters or {}
        self.jenkins_conn_id = jenkins_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.allowed_results = tuple(allowed_results)

    def execute(self, context: Any) -> JenkinsBuildResult:
        """Queue the build, follow it to its result and return the build."""
        job = require_text(f"task {self.task_id!r}", "job_name", self.job_name)
        if not isinstance(self.parameters, dict):
            raise ValueError(
                f"task {self.task_id!r}: argument 'parameters' must be a dict, got {self.parameters!r}"
            )
        parameters = {str(k): str(v) for k, v in self.parameters.items()}
        hook = JenkinsHook(self.jenkins_conn_id)
        queue_item = hook.trigger(job, parameters)
        self.log.info("Queued Jenkins job %s as queue item %s", job, queue_item)
        build = hook.wait_for_build(
            job, queue_item, poll_interval=self.poll_interval, timeout=self.timeout
        )
        self.log.info("Jenkins build %s finished: %s", build.url, build.result)
        if build.result not in self.allowed_results:
            tail = hook.console_tail(job, build.number)
            raise ExternalServiceError(
                "Jenkins",
                f"run job {job!r}",
                f"build #{build.number} ended {build.result} (allowed: {', '.join(self.allowed_results)}); {build.url}"
                + (f"\nconsole tail:\n{tail}" if tail else ""),
                status=None,
            )
        return JenkinsBuildResult(
            job_name=job, number=build.number, url=build.url, result=build.result
        )
