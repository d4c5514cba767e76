"""Report a tuning's result through any Airflow notifier."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlwf_tuning._result import XCOM_KEY, TuningResult

#: The context key holding ``TuningResult.render_table()``, for notifier templates.
REPORT_KEY = "tuning_report"


def notify_result(
    notifier: Callable[[dict[str, Any]], object],
    result: TuningResult,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Call ``notifier`` (an Airflow ``BaseNotifier`` or any callable taking a context) with the result.

    The notifier receives ``context`` (in a DAG: the report task's Airflow context; locally:
    empty) plus ``tuning_result`` (``result.to_dict()``) and ``tuning_report`` (the text table),
    so its templated fields can use ``{{ tuning_report }}`` or ``{{ tuning_result.best_value }}``.
    """
    full = dict(context or {})
    full[XCOM_KEY] = result.to_dict()
    full[REPORT_KEY] = result.render_table()
    notifier(full)
