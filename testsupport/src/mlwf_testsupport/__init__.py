"""Shared test support for ML Workflows (unpublished).

Importing it imports no mlwf package: it serves every package's tests, in environments that hold
only that package's dependencies. The few helpers for one package's tests import that package
when called (:func:`mlwf_testsupport.fakes.mlflow_server` stops its server with
:mod:`mlwf_operators.processes`, and the deprecated :func:`process_tree` is that module's).

Loaded into every test session as the pytest plugin :mod:`mlwf_testsupport.plugin`, which
provides the ``airflow_home``, ``unused_port``, ``postgres_url`` and ``mariadb_url``
fixtures; the helpers below are plain functions (:func:`throwaway_database` for databases of
other scopes, :func:`start_on_free_port` for a server on a port that another xdist worker's
server may take first), :class:`AirflowApi` is the one REST client of the integration tests, and
:func:`package_scheduler` runs each test package on one pytest-xdist worker (so that a
package-scoped fixture starts once).
"""

from __future__ import annotations

from mlwf_testsupport._airflow_api import AirflowApi, AirflowApiError
from mlwf_testsupport._airflow_home import airflow_home_env
from mlwf_testsupport._api_server import CHROMIUM_ARGS, airflow_api_server
from mlwf_testsupport._databases import (
    DATABASE_KINDS,
    DatabaseKind,
    database_exists,
    throwaway_database,
)
from mlwf_testsupport._listen import (
    PortTakenError,
    ServerStartError,
    listens,
    port_bindable,
    start_on_free_port,
    wait_listening,
)
from mlwf_testsupport._poll import poll
from mlwf_testsupport._ports import free_port
from mlwf_testsupport._processes import (
    assert_no_leftover_processes,
    leftover_processes,
    process_tree,
)
from mlwf_testsupport._services import (
    REQUIRE_SERVICES_ENV,
    require_executable,
    require_service,
    services_required,
)
from mlwf_testsupport._xdist import PackageScheduling, package_scheduler, top_package

__all__ = [
    "free_port",
    "start_on_free_port",
    "wait_listening",
    "listens",
    "port_bindable",
    "PortTakenError",
    "ServerStartError",
    "require_service",
    "require_executable",
    "services_required",
    "REQUIRE_SERVICES_ENV",
    "process_tree",
    "leftover_processes",
    "assert_no_leftover_processes",
    "airflow_home_env",
    "poll",
    "AirflowApi",
    "AirflowApiError",
    "airflow_api_server",
    "CHROMIUM_ARGS",
    "throwaway_database",
    "database_exists",
    "DatabaseKind",
    "DATABASE_KINDS",
    "PackageScheduling",
    "package_scheduler",
    "top_package",
]
