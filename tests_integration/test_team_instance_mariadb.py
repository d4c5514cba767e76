"""A team's instance from a spec on MariaDB: the tests of ``test_team_instance.py`` on their own instance.

CeleryExecutor on the database broker (kombu's SQLAlchemy transport on MariaDB), 2 workers, the
three example workloads, a killed worker, and a restart of the whole instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import test_team_instance as shared
from test_team_instance import Team

# The same tests, collected here again in the same order (they build on each other: the
# restart test checks what the earlier ones made); each gets this module's `team` fixture,
# since pytest resolves a fixture from the module that collects the test.
test_workers_are_components_and_answer = shared.test_workers_are_components_and_answer
test_ml_pipeline_runs_on_celery = shared.test_ml_pipeline_runs_on_celery
test_tuning_iris_runs_on_celery = shared.test_tuning_iris_runs_on_celery
test_constructor_instance_created_through_the_api_runs = (
    shared.test_constructor_instance_created_through_the_api_runs
)
test_a_killed_worker_is_restarted_and_awaited = shared.test_a_killed_worker_is_restarted_and_awaited
test_restart_keeps_instances_tunings_and_history = (
    shared.test_restart_keeps_instances_tunings_and_history
)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    yield from shared.run_team("mariadb", tmp_path_factory)
