"""The reference trainer: scikit-learn on a dataset bundled with scikit-learn (no downloads).

It follows the trainer contract (see :mod:`mlwf_operators.trainers`)::

    train(params: dict, data: str, output_dir: str) -> dict[str, float]

``data`` is ``sklearn://breast_cancer``, ``sklearn://digits``, ``sklearn://iris`` or
``sklearn://wine``; a fixed, stratified 75/25 split (``random_state=0``) gives the training part
to :func:`train` and the held-out part to :func:`evaluate`. ``params``: ``model``
(``"logistic_regression"`` (default) or ``"random_forest"``) plus that estimator's
hyperparameters (``C``, ``max_iter``, ``n_estimators``, ``max_depth``, ...). The model directory
holds ``model.joblib`` and ``metadata.json`` (feature count, classes, scikit-learn version, and
the model file's SHA-256, checked by :func:`load_model` before it unpickles anything).

scikit-learn, joblib and numpy are imported inside the functions: this module is named in DAG
files (and may be imported by them), and importing scikit-learn there would cost every parse of
the file seconds.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwf_operators.model_files import (
    METADATA_FILE,
    MODEL_FILE,
    read_verified_model_bytes,
    seal_model_dir,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]  # ships no type information

    Arrays = tuple[NDArray[np.float64], NDArray[Any]]

__all__ = [
    "DATASETS",
    "load_split",
    "train",
    "evaluate",
    "load_model",
    "MODEL_FILE",
    "METADATA_FILE",
]

#: The bundled datasets: ``sklearn://<name>`` → the ``sklearn.datasets`` loader function's name.
DATASETS = {
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
}
_SCHEME = "sklearn://"


def load_split(data: str, part: str) -> Arrays:
    """Return ``(X, y)`` of the ``"train"`` or ``"test"`` part of a bundled dataset."""
    if not data.startswith(_SCHEME):
        raise ValueError(
            f"data {data!r} is not a bundled dataset; use one of {sorted(_SCHEME + n for n in DATASETS)}"
        )
    name = data[len(_SCHEME) :]
    if name not in DATASETS:
        raise ValueError(f"unknown bundled dataset {name!r} in {data!r}; known: {sorted(DATASETS)}")
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    import numpy as np
    from sklearn import datasets  # type: ignore[import-untyped]  # ships no type information
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    bunch = getattr(datasets, DATASETS[name])()
    x_train, x_test, y_train, y_test = train_test_split(
        np.asarray(bunch.data, dtype=np.float64),
        bunch.target,
        test_size=0.25,
        random_state=0,
        stratify=bunch.target,
    )
    return (x_train, y_train) if part == "train" else (x_test, y_test)


def _estimator(params: dict[str, Any]) -> Pipeline:
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    options = dict(params)
    kind = options.pop("model", "logistic_regression")
    if kind == "logistic_regression":
        options.setdefault("max_iter", 1000)
        return make_pipeline(StandardScaler(), LogisticRegression(**options))
    if kind == "random_forest":
        options.setdefault("random_state", 0)
        return make_pipeline(RandomForestClassifier(**options))
    raise ValueError(
        f"params['model'] must be 'logistic_regression' or 'random_forest', not {kind!r}"
    )


def _scores(model: Pipeline, x: NDArray[np.float64], y: NDArray[Any]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss  # type: ignore[import-untyped]

    predicted = model.predict(x)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, average="macro")),
        "log_loss": float(log_loss(y, model.predict_proba(x), labels=model.classes_)),
    }


def train(params: dict[str, Any], data: str, output_dir: str) -> dict[str, float]:
    """Fit the estimator on the training part, save it to ``output_dir``, return training metrics."""
    import joblib  # type: ignore[import-untyped]  # ships no type information
    import sklearn

    x, y = load_split(data, "train")
    model = _estimator(params)
    print(
        f"training {model.steps[-1][0]} on {data}: {x.shape[0]} rows, {x.shape[1]} features",
        flush=True,
    )
    started = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - started
    out = Path(output_dir)
    joblib.dump(model, out / MODEL_FILE)
    metadata = {
        "flavor": "sklearn",
        "n_features": int(x.shape[1]),
        "classes": [c.item() for c in model.classes_],
        "sklearn_version": sklearn.__version__,
        "data": data,
        "params": params,
    }
    seal_model_dir(out, metadata, MODEL_FILE)  # records the model file's SHA-256
    metrics = {f"train_{k}": v for k, v in _scores(model, x, y).items()}
    metrics["fit_seconds"] = seconds
    print(f"trained in {seconds:.3f} s: train_accuracy={metrics['train_accuracy']:.4f}", flush=True)
    return metrics


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load ``(model, metadata)`` from a model directory written by :func:`train`.

    The model file must be a plain file name in the directory with the SHA-256 recorded at
    training time (see :mod:`mlwf_operators.model_files`); otherwise
    :class:`~mlwf_operators.model_files.ModelFileError` is raised and nothing is unpickled.
    """
    import joblib

    data, metadata = read_verified_model_bytes(model_dir)
    return joblib.load(io.BytesIO(data)), metadata


def evaluate(model_dir: Path, data: str) -> dict[str, float]:
    """Score the model in ``model_dir`` on the held-out part of ``data`` (accuracy, f1_macro, log_loss)."""
    model, _ = load_model(model_dir)
    x, y = load_split(data, "test")
    return _scores(model, x, y)
