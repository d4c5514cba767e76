"""One laptop instance (EmbeddedInstance: SQLite, LocalExecutor) for every module of this package.

Each module used to start its own instance with its own DAG folder; their options never
conflicted, so one instance holds the union of their DAG folders and options, and each module
keeps to its own DAG ids. A start costs about 40 s on a quiet 2-core machine and 100 s under
load. The fixture is package-scoped and the package runs whole on one pytest-xdist worker
(``tests_integration/conftest.py``), so the instance starts once and stops after the package's
last test.

What belongs here: tests that use the instance as it is. A module that restarts, kills or
reconfigures its instance, or needs another executor or database, starts its own
(``start_instance``), e.g. ``test_tuning_resume.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi
from mlwf_tuning import SqlExperimentStore

TESTS = Path(__file__).resolve().parents[1]
#: Every module's DAG folder, copied flat into the instance's DAG folder (no file name clash).
DAG_SOURCES = [
    TESTS / "dags_tuning",  # test_tuning.py
    TESTS / "dags_tuning_stopping",  # test_tuning_stopping.py
    TESTS / "dags_types",  # test_types_on_airflow.py
    TESTS / "dags_stats_bridge",  # test_stats_bridge.py
    TESTS.parent / "examples" / "dags",  # test_ml_pipeline.py
]
#: A DAG of every DAG file: the instance is ready for the tests once all of them are parsed. The
#: first parse of the whole folder otherwise overlaps the first module's runs, and on a loaded
#: machine a REST request then waited for SQLite longer than a client's timeout (seen: 30 s).
FIRST_PARSE = (
    "tune_gp",  # dags_tuning/tuning_dags.py
    "tune_epochs",  # dags_tuning_stopping/stopping_dags.py
    "typed_good",
    "typed_runtime",  # dags_types/ (typed_bad.py is refused: an import error)
    "stats_bridge_demo",
    "ml_pipeline",
    "hello_typed",
    "tuning_iris",  # examples/dags/
)
#: Two tunings of two experiments each, run side by side (test_tuning_stopping.py), plus their
#: tuning tasks: LocalExecutor pre-forks this many workers.
PARALLELISM = 6


@pytest.fixture(scope="package")
def tuning_store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the experiment store the instance's tunings record into (``[mlwf_tuning] store_url``)."""
    return f"sqlite:///{tmp_path_factory.mktemp('tuning-store') / 'tuning.db'}"


@pytest.fixture(scope="package")
def instance(
    start_instance: Callable[..., AbstractContextManager[EmbeddedInstance]], tuning_store_url: str
) -> Iterator[EmbeddedInstance]:
    """The package's running instance (api-server, scheduler, dag-processor, triggerer)."""
    extra_config = {
        # Tunings record into a store named in the configuration (test_tuning*.py).
        "mlwf_tuning": {"store_url": tuning_store_url},
        # The type checker refuses statically wrong DAGs (test_types_on_airflow.py); "error" is
        # also the default, set here because the test is about it.
        "mlwf_types": {"mode": "error"},
        # A viewer and a Prometheus service user; the metrics route needs edit_configuration
        # (test_stats_bridge.py).
        "core": {"simple_auth_manager_users": "admin:admin,viewer:viewer,prometheus:op"},
        "mlwf_stats_bridge": {"metrics_access": "edit_configuration"},
        # The DAG processor re-parses every known file each min_file_process_interval (30 s),
        # changed or not: with the union of DAG folders (about a dozen files at 1-3 s of CPU each
        # under load) that keeps a core busy for nothing, since no test here edits a DAG file in
        # place. New and changed files are still parsed at once (refresh_interval, mtime), and
        # so are the constructor instances the plugin asks to parse.
        "dag_processor": {"min_file_process_interval": "600"},
    }
    with start_instance(
        "laptop-instance", DAG_SOURCES, parallelism=PARALLELISM, extra_config=extra_config
    ) as inst:
        with AirflowApi.for_instance(inst) as api:
            for dag_id in FIRST_PARSE:
                api.wait_dag(dag_id, timeout=300)
        yield inst


@pytest.fixture(scope="package")
def store(tuning_store_url: str) -> Iterator[SqlExperimentStore]:
    """The experiment store, read directly by the tests."""
    store = SqlExperimentStore(tuning_store_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the UI tests save their screenshots: ``MLWF_SCREENSHOTS`` if set, else the test's tmp folder.

    ``MLWF_SCREENSHOTS=docs/mlwf-ui/img`` refreshes the pictures of the docs (docs/mlwf-ui).
    """
    import os

    folder = Path(os.environ.get("MLWF_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _signed_in_page(api: AirflowApi) -> Iterator[Any]:
    """A Chromium page signed in to the instance (``api``'s token as Airflow's ``_token`` cookie).

    Debian's Chromium through Playwright (skips, or fails in CI, without it). On leaving, the
    test fails if a script error happened on the page.
    """
    from mlwf_testsupport import CHROMIUM_ARGS, require_executable
    from playwright.sync_api import sync_playwright

    chromium = require_executable("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            token = api.headers["Authorization"].removeprefix("Bearer ")
            context.add_cookies([{"name": "_token", "value": token, "url": api.url}])
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            browser.close()
    assert errors == [], errors


@pytest.fixture(scope="session")
def signed_in_page() -> Callable[[AirflowApi], AbstractContextManager[Any]]:
    """Return ``open(api)``: a context manager of a Chromium page signed in to ``api``'s server."""
    return _signed_in_page
