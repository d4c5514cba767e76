"""The experiment contract between a tuning DAG and the runs of its experiment DAG.

A tuning triggers each experiment as a run whose ``conf`` holds the hyperparameters plus
``EXPERIMENT_CONF_KEY`` (which tuning, which experiment, the run's secret token); the run's
task ``result_task_id`` pushes the metrics as XCom ``WORKFLOW_RESULT_KEY``, and optionally its
start and end as ``WORKFLOW_TIMING_KEY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlwf_tuning._records import ExperimentRecord

#: The XCom key (and the task id in ``TrainEvaluateWorkflow``) of an experiment's metrics.
WORKFLOW_RESULT_KEY = "workflow_result"
#: An optional XCom next to ``workflow_result``: ``{"started": iso, "finished": iso}`` of the run.
WORKFLOW_TIMING_KEY = "workflow_timing"

#: The ``conf`` key of an experiment run that tells the run which tuning and experiment it is:
#: ``{"tuning_id": str, "index": int, "token": str}`` (used by ``report_intermediate`` for early
#: stopping; the token, recorded with the run id in the store, proves the tuner created the run).
EXPERIMENT_CONF_KEY = "mlwf_tuning"


def conf_of(
    record: ExperimentRecord,
    base: Mapping[str, Any],
    tuning_id: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Return the triggered run's ``conf``: the base values overridden by the experiment's params.

    With ``tuning_id``, the conf also carries ``EXPERIMENT_CONF_KEY``: the tuning, the index and
    the run's ``token``.
    """
    conf = {**base, **record.params}
    if tuning_id is not None:
        entry: dict[str, Any] = {"tuning_id": tuning_id, "index": record.index}
        if token is not None:
            entry["token"] = token
        conf[EXPERIMENT_CONF_KEY] = entry
    return conf


def token_of(conf: object) -> str | None:
    """Return the experiment token in a run's ``conf``, or None."""
    entry = conf.get(EXPERIMENT_CONF_KEY) if isinstance(conf, Mapping) else None
    token = entry.get("token") if isinstance(entry, Mapping) else None
    return token if isinstance(token, str) else None
