"""Protocol-faithful fakes of services that cannot run here, and a real MLflow server helper.

The real client libraries (``hdfs``, ``jira``, ``python-jenkins``) talk to these loopback HTTP
servers; nothing in a client library is patched. Each fake keeps its state in memory, logs the
requests it served (``.requests``) and can answer with injected errors (``.inject_error``).
"""

from __future__ import annotations

from mlwf_testsupport.fakes._http import FakeHttpServer, Request, Response
from mlwf_testsupport.fakes.jenkins import FakeJenkins, FakeJob
from mlwf_testsupport.fakes.jira import FakeJira
from mlwf_testsupport.fakes.mlflow_server import mlflow_server
from mlwf_testsupport.fakes.webhdfs import FakeWebHdfs

__all__ = [
    "FakeHttpServer",
    "Request",
    "Response",
    "FakeWebHdfs",
    "FakeJira",
    "FakeJenkins",
    "FakeJob",
    "mlflow_server",
]
