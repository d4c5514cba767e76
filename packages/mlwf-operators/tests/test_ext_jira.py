"""JIRA hook, operators and sensor against the JIRA REST v2 fake, through real Airflow connections."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from airflow.sdk.exceptions import AirflowFailException
from mlwf_operators.hooks import ConnectionConfigError, ExternalServiceError, JiraHook
from mlwf_operators.operators.jira import (
    JiraCommentOperator,
    JiraCreateIssueOperator,
    JiraTransitionOperator,
    JiraUpdateIssueOperator,
)
from mlwf_operators.sensors.jira import JiraIssueSensor
from mlwf_testsupport import free_port
from mlwf_testsupport.fakes import FakeJira

CONN = "jira_test"


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **conn: object) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "mlwf_jira", **conn})
    )


@pytest.fixture
def jira(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    """A JIRA fake with user airflow/secret, token 'pat-1', and connection ``jira_test`` to it."""
    with FakeJira(users={"airflow": "secret"}, tokens={"pat-1"}) as fake:
        _set_conn(
            monkeypatch,
            CONN,
            host=fake.url,
            login="airflow",
            password="secret",
            extra={"max_retries": 0},
        )
        yield fake


def _create(summary: str = "Retrain churn model", **kwargs: object) -> str:
    op = JiraCreateIssueOperator(
        task_id="create", project_key="ML", summary=summary, jira_conn_id=CONN, **kwargs
    )  # type: ignore[arg-type]
    return op.execute({})


def test_issue_lifecycle_create_update_comment_transition(jira: FakeJira) -> None:
    """Create, update, comment and transition operators change the issue the way JIRA would."""
    key = _create(description="weekly", labels=["ml"], fields={"customfield_10100": "3"})
    assert key == "ML-1"
    issue = jira.issues[key]["fields"]
    assert (issue["summary"], issue["labels"], issue["customfield_10100"], issue["issuetype"]["name"]) == (
        "Retrain churn model", ["ml"], "3", "Task",
    )  # fmt: skip
    assert (
        JiraUpdateIssueOperator(
            task_id="u", issue_key=key, fields={"labels": ["ml", "prod"]}, jira_conn_id=CONN
        ).execute({})
        == key
    )
    assert jira.issues[key]["fields"]["labels"] == ["ml", "prod"]
    comment_id = JiraCommentOperator(
        task_id="c", issue_key=key, body="AUC 0.91", jira_conn_id=CONN
    ).execute({})
    assert [(c["id"], c["body"]) for c in jira.issues[key]["fields"]["comment"]["comments"]] == [
        (comment_id, "AUC 0.91")
    ]
    status = JiraTransitionOperator(
        task_id="t", issue_key=key, transition="start progress", jira_conn_id=CONN
    ).execute({})
    assert status == "In Progress" == jira.status_of(key)


def test_token_authentication_works(jira: FakeJira, monkeypatch: pytest.MonkeyPatch) -> None:
    """A personal access token in extra 'token' authenticates with a bearer header."""
    _set_conn(monkeypatch, "jira_pat", host=jira.url, extra={"token": "pat-1", "max_retries": 0})
    key = JiraCreateIssueOperator(
        task_id="c", project_key="ML", summary="s", jira_conn_id="jira_pat"
    ).execute({})
    assert jira.issues[key]["fields"]["reporter"]["name"] == "token-user"


def test_bad_credentials_fail_with_401(jira: FakeJira, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password fails at connect with JIRA, HTTP 401 and JIRA's message."""
    _set_conn(
        monkeypatch,
        "jira_bad",
        host=jira.url,
        login="airflow",
        password="wrong",
        extra={"max_retries": 0},
    )
    with pytest.raises(
        ExternalServiceError, match=r"JIRA connect failed \(HTTP 401\): You are not authenticated"
    ):
        JiraCommentOperator(
            task_id="c", issue_key="ML-1", body="x", jira_conn_id="jira_bad"
        ).execute({})


def test_missing_credentials_are_a_connection_error(
    jira: FakeJira, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection with neither login/password nor token is refused naming the connection."""
    _set_conn(monkeypatch, "jira_anon", host=jira.url)
    with pytest.raises(
        ConnectionConfigError,
        match=r"connection 'jira_anon' \(type mlwf_jira\): set login and password, or extra 'token'",
    ):
        JiraHook("jira_anon").status("ML-1")


def test_create_in_unknown_project_reports_field_errors(jira: FakeJira) -> None:
    """JIRA's 400 field errors (project, summary) appear in the task failure."""
    op = JiraCreateIssueOperator(task_id="c", project_key="NOPE", summary="x", jira_conn_id=CONN)
    with pytest.raises(
        ExternalServiceError, match=r"JIRA create issue failed \(HTTP 400\): .*project is required"
    ):
        op.execute({})
    assert jira.issues == {}


def test_unknown_field_is_refused_by_jira(jira: FakeJira) -> None:
    """Updating a field that is not on the screen fails with HTTP 400 naming the field."""
    key = _create()
    with pytest.raises(
        ExternalServiceError,
        match=r"update issue ML-1 failed \(HTTP 400\): .*Field 'customfield_999' cannot be set",
    ):
        JiraUpdateIssueOperator(
            task_id="u", issue_key=key, fields={"customfield_999": 1}, jira_conn_id=CONN
        ).execute({})


def test_missing_issue_is_404(jira: FakeJira) -> None:
    """Commenting on an issue that does not exist fails with HTTP 404 'Issue Does Not Exist'."""
    with pytest.raises(
        ExternalServiceError,
        match=r"JIRA comment on issue ML-42 failed \(HTTP 404\): Issue Does Not Exist",
    ):
        JiraCommentOperator(task_id="c", issue_key="ML-42", body="x", jira_conn_id=CONN).execute({})


def test_unknown_transition_lists_the_available_ones(jira: FakeJira) -> None:
    """A transition name not offered from the current status fails listing the ones that are."""
    key = _create()
    with pytest.raises(
        ExternalServiceError,
        match=r"no transition named 'Approve' from status 'To Do'; available: 'Start Progress'",
    ):
        JiraTransitionOperator(
            task_id="t", issue_key=key, transition="Approve", jira_conn_id=CONN
        ).execute({})
    assert jira.status_of(key) == "To Do"


def test_server_error_is_reported(jira: FakeJira) -> None:
    """An injected 500 on the comment endpoint fails the task with HTTP 500 and the message."""
    key = _create()
    jira.inject_error(
        500, "Internal server error: database unavailable", method="POST", path_contains="/comment"
    )
    with pytest.raises(
        ExternalServiceError,
        match=r"comment on issue ML-1 failed \(HTTP 500\): .*database unavailable",
    ):
        JiraCommentOperator(task_id="c", issue_key=key, body="x", jira_conn_id=CONN).execute({})


def test_unreachable_jira_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JIRA nobody listens on fails with 'cannot reach JIRA' and its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    _set_conn(
        monkeypatch,
        "jira_down",
        host=url,
        login="a",
        password="b",
        extra={"max_retries": 0, "timeout": 2},
    )
    with pytest.raises(
        ExternalServiceError, match=rf"JIRA connect failed: cannot reach JIRA at {url}"
    ):
        JiraHook("jira_down").status("ML-1")


def test_empty_issue_key_is_named() -> None:
    """An empty ``issue_key`` fails before any request, naming the argument."""
    with pytest.raises(
        ValueError, match=r"task 'c': argument 'issue_key' must be a non-empty string"
    ):
        JiraCommentOperator(task_id="c", issue_key=" ", body="x").execute({})


def test_sensor_waits_for_a_target_status(jira: FakeJira) -> None:
    """The sensor is not done in To Do and is done, returning the status, once the issue is Done."""
    key = _create()
    sensor = JiraIssueSensor(
        task_id="s",
        issue_key=key,
        target_statuses=["Done"],
        failure_statuses=["Rejected"],
        jira_conn_id=CONN,
    )
    assert sensor.poke({}).is_done is False
    for name in ("Start Progress", "Send to Review", "Approve"):
        JiraHook(CONN).transition(key, name)
    result = sensor.poke({})
    assert (result.is_done, result.xcom_value) == (True, "Done")


def test_sensor_fails_on_a_failure_status(jira: FakeJira) -> None:
    """The sensor fails the task without retry when the issue reaches a failure status."""
    key = _create()
    for name in ("Start Progress", "Send to Review", "Reject"):
        JiraHook(CONN).transition(key, name)
    sensor = JiraIssueSensor(
        task_id="s",
        issue_key=key,
        target_statuses=["Done"],
        failure_statuses=["Rejected"],
        jira_conn_id=CONN,
    )
    with pytest.raises(
        AirflowFailException, match=r"JIRA issue ML-1 reached failure status 'Rejected'"
    ):
        sensor.poke({})


def test_sensor_refuses_overlapping_statuses() -> None:
    """A status that is both target and failure is refused when the DAG is defined."""
    with pytest.raises(
        ValueError, match=r"statuses \['Done'\] are both target and failure statuses"
    ):
        JiraIssueSensor(
            task_id="s", issue_key="ML-1", target_statuses=["Done"], failure_statuses=["Done"]
        )
