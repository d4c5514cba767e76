"""Run training entry points in a child process, and the scikit-learn reference trainer.

The trainer contract: an entry point is a callable ``train(params, data, output_dir)`` named
``"pkg.module:function"`` (or ``"pkg.module"``, meaning its function ``train``, or a ``.py`` file
path, optionally with ``:function``). It receives the hyperparameters (a JSON-serialisable
dict), the data location (a string it interprets) and an empty output directory; it writes the
model there and returns a ``dict[str, float]`` of metrics. It runs in its own process with the
same interpreter; what it prints is streamed into the task log. While it trains it may call
``report_progress(step, metrics)`` (per epoch, say): ``TrainModelOperator.on_progress`` gets them.
"""

from __future__ import annotations

from mlwf_operators.trainers._progress import PROGRESS_PREFIX, parse_progress, report_progress
from mlwf_operators.trainers._runner import (
    TrainerCrashedError,
    TrainerError,
    TrainerTimeoutError,
    run_trainer,
)

__all__ = [
    "run_trainer",
    "TrainerError",
    "TrainerCrashedError",
    "TrainerTimeoutError",
    "report_progress",
    "parse_progress",
    "PROGRESS_PREFIX",
]
