"""JenkinsJobOperator against the Jenkins fake, through real Airflow connections."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from mlwf_operators.hooks import ExternalServiceError
from mlwf_operators.operators.jenkins import JenkinsJobOperator
from mlwf_testsupport import free_port
from mlwf_testsupport.fakes import FakeJenkins

CONN = "jenkins_test"


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **conn: object) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "mlwf_jenkins", **conn})
    )


@pytest.fixture
def jenkins(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJenkins]:
    """A Jenkins fake with user airflow/api-token, and connection ``jenkins_test`` (host + port) to it."""
    with FakeJenkins(users={"airflow": "api-token"}) as fake:
        _set_conn(
            monkeypatch,
            CONN,
            host="127.0.0.1",
            port=fake.port,
            login="airflow",
            password="api-token",
        )
        yield fake


def _run(job: str, conn: str = CONN, **kwargs: object) -> object:
    op = JenkinsJobOperator(
        task_id="ci", job_name=job, jenkins_conn_id=conn, poll_interval=0.01, **kwargs
    )  # type: ignore[arg-type]
    return op.execute({})


def test_successful_build_returns_number_url_and_result(jenkins: FakeJenkins) -> None:
    """A parameterized job is queued, followed to its build and returned with SUCCESS."""
    job = jenkins.add_job(
        "deploy-model",
        parameters={"MODEL_URI": "", "STAGE": "staging"},
        queue_polls=2,
        build_polls=3,
    )
    result = _run("deploy-model", parameters={"MODEL_URI": "hdfs:///models/7", "IGNORED": "x"})
    assert result == {
        "job_name": "deploy-model",
        "number": 1,
        "url": f"{jenkins.url}/job/deploy-model/1/",
        "result": "SUCCESS",
    }
    assert job.builds[0]["params"] == {"MODEL_URI": "hdfs:///models/7", "STAGE": "staging"}
    assert any(m == "POST" and "buildWithParameters" in p for m, p in jenkins.requests)


def test_job_without_parameters_uses_build(jenkins: FakeJenkins) -> None:
    """A job without parameters is triggered through /build and succeeds."""
    jenkins.add_job("lint")
    assert _run("lint")["result"] == "SUCCESS"  # type: ignore[index]
    assert any(m == "POST" and p.endswith("/job/lint/build") for m, p in jenkins.requests)


def test_failed_build_fails_the_task_with_url_and_console(jenkins: FakeJenkins) -> None:
    """A FAILURE result fails the task naming Jenkins, the job, the build URL and the console tail."""
    jenkins.add_job(
        "train",
        result="FAILURE",
        console="Running tests\nAssertionError: accuracy 0.4 < 0.9\nFinished: FAILURE\n",
    )
    with pytest.raises(ExternalServiceError) as info:
        _run("train")
    message = str(info.value)
    assert message.startswith(
        "Jenkins run job 'train' failed: build #1 ended FAILURE (allowed: SUCCESS); "
    )
    assert (
        f"{jenkins.url}/job/train/1/" in message and "AssertionError: accuracy 0.4 < 0.9" in message
    )


def test_aborted_build_fails_and_allowed_results_are_honoured(jenkins: FakeJenkins) -> None:
    """ABORTED fails by default; UNSTABLE passes when listed in ``allowed_results``."""
    jenkins.add_job("slow", result="ABORTED")
    with pytest.raises(ExternalServiceError, match="ended ABORTED"):
        _run("slow")
    jenkins.add_job("flaky", result="UNSTABLE")
    assert _run("flaky", allowed_results=("SUCCESS", "UNSTABLE"))["result"] == "UNSTABLE"  # type: ignore[index]


def test_unknown_job_is_404(jenkins: FakeJenkins) -> None:
    """Triggering a job that does not exist fails with HTTP 404 and the job name."""
    with pytest.raises(
        ExternalServiceError, match=r"Jenkins trigger job 'ghost' failed \(HTTP 404\): not found"
    ):
        _run("ghost")


def test_bad_credentials_are_401(jenkins: FakeJenkins, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong API token fails with HTTP 401 and Jenkins's message naming the user."""
    jenkins.add_job("lint")
    _set_conn(monkeypatch, "jenkins_bad", host=jenkins.url, login="airflow", password="wrong")
    with pytest.raises(
        ExternalServiceError,
        match=r"trigger job 'lint' failed \(HTTP 401\): 401 Unauthorized: Error 401 Invalid password/token for user: airflow",
    ):
        _run("lint", conn="jenkins_bad")


def test_server_error_while_polling_the_queue_is_reported(jenkins: FakeJenkins) -> None:
    """An injected 502 on the queue item fails the task with HTTP 502 and the operation."""
    jenkins.add_job("lint", queue_polls=5)
    jenkins.inject_error(502, "Bad Gateway", path_contains="/queue/item/")
    with pytest.raises(
        ExternalServiceError,
        match=r"Jenkins read queue item 41 of job 'lint' failed \(HTTP 502\): 502",
    ):
        _run("lint")


def test_timeout_names_the_state(jenkins: FakeJenkins) -> None:
    """A build that does not finish within ``timeout`` fails naming the build still running."""
    jenkins.add_job("long", build_polls=10_000)
    with pytest.raises(
        ExternalServiceError, match=r"timed out after 0.2 s; build .*/job/long/1/ still running"
    ):
        _run("long", timeout=0.2)


def test_unreachable_jenkins_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Jenkins nobody listens on fails with 'cannot reach Jenkins' and its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    _set_conn(monkeypatch, "jenkins_down", host=url, login="a", password="b")
    with pytest.raises(
        ExternalServiceError,
        match=rf"Jenkins trigger job 'x' failed: cannot reach Jenkins at {url}",
    ):
        _run("x", conn="jenkins_down")


def test_bad_arguments_are_named() -> None:
    """A non-positive poll interval is refused at definition, an empty job name at run time."""
    with pytest.raises(ValueError, match="poll_interval and timeout must be positive"):
        JenkinsJobOperator(task_id="ci", job_name="x", poll_interval=0)
    with pytest.raises(
        ValueError, match=r"task 'ci': argument 'job_name' must be a non-empty string"
    ):
        JenkinsJobOperator(task_id="ci", job_name="").execute({})
