"""JIRA and Jenkins operators inside a real Airflow DAG run (``dag.test()``), XComs flowing between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mlwf_testsupport.fakes import FakeJenkins, FakeJira

DAG_FILE = """
import pendulum
from airflow.sdk import DAG
from mlwf_operators import JenkinsJobOperator, JiraCommentOperator, JiraCreateIssueOperator

with DAG("ext_run", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    ticket = JiraCreateIssueOperator(task_id="ticket", project_key="ML", summary="release {{ run_id }}", jira_conn_id="jira_run")
    ci = JenkinsJobOperator(task_id="ci", job_name="model-tests", parameters={"ISSUE": ticket.output},
                            poll_interval=0.05, jenkins_conn_id="jenkins_run")
    note = JiraCommentOperator(task_id="note", issue_key=ticket.output, body="{{ ti.xcom_pull('ci')['url'] }}",
                               jira_conn_id="jira_run")
    ci >> note
"""

RUNNER = """
import runpy, sys
from airflow.utils.db import initdb
initdb()
run = runpy.run_path(sys.argv[1])["dag"].test()
print("RESULT", run.state, run.run_id)
"""


def test_dag_run_passes_issue_key_and_build_between_tasks(airflow_home: Path) -> None:
    """A DAG run creates an issue, runs a job with its key and comments the build URL on it."""
    (airflow_home / "dags").mkdir(parents=True, exist_ok=True)
    dag_file = airflow_home / "dags" / "ext_run.py"  # dag.test() serializes it from the DAG folder
    dag_file.write_text(textwrap.dedent(DAG_FILE))
    with FakeJira() as jira, FakeJenkins() as jenkins:
        jenkins.add_job("model-tests", parameters={"ISSUE": ""})
        env = {
            **os.environ,
            "AIRFLOW_CONN_JIRA_RUN": json.dumps(
                {
                    "conn_type": "mlwf_jira",
                    "host": jira.url,
                    "login": "airflow",
                    "password": "secret",
                }
            ),
            "AIRFLOW_CONN_JENKINS_RUN": f"mlwf-jenkins://airflow:api-token@127.0.0.1:{jenkins.port}",
        }
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(dag_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, (
            f"DAG run did not finish (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        _, state, run_id = lines[-1].split(" ", 2)
        assert state == "success", result.stdout[-3000:]
        assert jenkins.jobs["model-tests"].builds[0]["params"] == {"ISSUE": "ML-1"}
        issue = jira.issues["ML-1"]["fields"]
        assert issue["summary"] == f"release {run_id}"
        assert [c["body"] for c in issue["comment"]["comments"]] == [
            f"{jenkins.url}/job/model-tests/1/"
        ]
