"""The reference trainer: scikit-learn on a dataset bundled with scikit-learn (no downloads).

It follows the trainer contract (see :mod:`mlwf_operators.trainers`)::

    train(params: dict, data: str, output_dir: str) -> dict[str, float]

``data`` is ``sklearn://breast_cancer``, ``sklearn://digits``, ``sklearn://iris`` or
``sklearn://wine``; a fixed, stratified 75/25 split (``random_state=0``) gives the training part
to :func:`train` and the held-out part to :func:`evaluate`. ``params``: ``model``
(``"logistic_regression"`` (default) or ``"random_forest"``) plus that estimator's
hyperparameters (``C``, ``max_iter``, ``n_estimators``, ``max_depth``, ...). The model directory
holds ``model.joblib`` and ``metadata.json`` (feature count, classes, scikit-learn version).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # ships no type information
import numpy as np
import sklearn  # type: ignore[import-untyped]  # ships no type information
from numpy.typing import NDArray
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]  # ships no type information
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]  # ships no type information
from sklearn.metrics import accuracy_score, f1_score, log_loss  # type: ignore[import-untyped]  # ships no type information
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]  # ships no type information
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]  # ships no type information
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]  # ships no type information

__all__ = [
    "DATASETS",
    "load_split",
    "train",
    "evaluate",
    "load_model",
    "MODEL_FILE",
    "METADATA_FILE",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
}
_SCHEME = "sklearn://"

Arrays = tuple[NDArray[np.float64], NDArray[Any]]


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
    bunch = DATASETS[name]()
    x_train, x_test, y_train, y_test = train_test_split(
        np.asarray(bunch.data, dtype=np.float64),
        bunch.target,
        test_size=0.25,
        random_state=0,
        stratify=bunch.target,
    )
    return (x_train, y_train) if part == "train" else (x_test, y_test)


def _estimator(params: dict[str, Any]) -> Pipeline:
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
    predicted = model.predict(x)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, average="macro")),
        "log_loss": float(log_loss(y, model.predict_proba(x), labels=model.classes_)),
    }


def train(params: dict[str, Any], data: str, output_dir: str) -> dict[str, float]:
    """Fit the estimator on the training part, save it to ``output_dir``, return training metrics."""
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
        "model_file": MODEL_FILE,
        "n_features": int(x.shape[1]),
        "classes": [c.item() for c in model.classes_],
        "sklearn_version": sklearn.__version__,
        "data": data,
        "params": params,
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    metrics = {f"train_{k}": v for k, v in _scores(model, x, y).items()}
    metrics["fit_seconds"] = seconds
    print(f"trained in {seconds:.3f} s: train_accuracy={metrics['train_accuracy']:.4f}", flush=True)
    return metrics


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load ``(model, metadata)`` from a model directory written by :func:`train`."""
    metadata_path = model_dir / METADATA_FILE
    if not metadata_path.is_file():
        raise FileNotFoundError(f"model directory {model_dir} has no {METADATA_FILE}")
    metadata: dict[str, Any] = json.loads(metadata_path.read_text(encoding="utf-8"))
    model_path = model_dir / str(metadata.get("model_file", MODEL_FILE))
    if not model_path.is_file():
        raise FileNotFoundError(f"model directory {model_dir} has no {model_path.name}")
    return joblib.load(model_path), metadata


def evaluate(model_dir: Path, data: str) -> dict[str, float]:
    """Score the model in ``model_dir`` on the held-out part of ``data`` (accuracy, f1_macro, log_loss)."""
    model, _ = load_model(model_dir)
    x, y = load_split(data, "test")
    return _scores(model, x, y)
