"""Airflow cluster policy: DAGs with type errors are refused before they are stored.

Registered through the ``airflow.policy`` entry point, so installing mlwf-types activates it in
every Airflow process. Airflow imports this module while ``import airflow`` runs, so it imports
nothing heavy at module level and never raises on import.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

log = logging.getLogger(__name__)

# Airflow's own marker is ``airflow.policies.hookimpl``; an identical marker (same project name)
# avoids importing airflow.policies while ``import airflow`` is still running.
hookimpl = pluggy.HookimplMarker("airflow.policy")


@hookimpl
def dag_policy(dag: Any) -> None:
    """Check the DAG; refuse it (``error`` mode) or log (``warn``) when its types disagree."""
    from airflow.exceptions import AirflowClusterPolicyViolation

    # The public name, looked up per call: wrapping ``mlwf_types.check_dag`` (to time or log the
    # checks, as benchmarks/types_overhead does) takes effect in the policy too.
    from mlwf_types import check_dag
    from mlwf_types._config import current_mode
    from mlwf_types._declarations import DECLARATION_ATTR, operator_class
    from mlwf_types._errors import InvalidModeError
    from mlwf_types._runtime import guard_operator_class, install_taskflow_guard

    try:
        mode = current_mode()
    except InvalidModeError as exc:
        raise AirflowClusterPolicyViolation(str(exc)) from None
    if mode == "off":
        return
    issues = check_dag(dag)
    errors = [i for i in issues if i.severity == "error"]
    for issue in issues:
        if issue.severity == "warning" or mode == "warn":
            log.warning("mlwf-types: %s", issue.message)
    if errors and mode == "error":
        lines = "\n".join(f"  - {i.message}" for i in errors)
        raise AirflowClusterPolicyViolation(
            f"mlwf-types found {len(errors)} type error(s) in DAG {dag.dag_id!r}:\n{lines}"
        )
    install_taskflow_guard()
    for cls in {operator_class(task) for task in dag.tasks}:
        if getattr(cls, DECLARATION_ATTR, None) is not None:
            guard_operator_class(cls)
