"""Training runs in a real child process: the reference trainer, crashes, timeouts."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from airflow.sdk import Context
from mlwf_operators.artifacts import (
    ArtifactStoreError,
    LocalArtifactStore,
    artifact_store_for,
    register_artifact_store,
)
from mlwf_operators.trainers import TrainerCrashedError, TrainerTimeoutError, run_trainer
from mlwf_testsupport import assert_no_leftover_processes

REFERENCE = "mlwf_operators.trainers.sklearn_reference:train"


def test_reference_trainer_writes_model_and_returns_metrics(tmp_path: Path) -> None:
    """The reference trainer fits on the real dataset, streams its log and writes model + metadata."""
    lines: list[str] = []
    out = tmp_path / "model"
    metrics = run_trainer(
        REFERENCE,
        {"model": "random_forest", "n_estimators": 20},
        "sklearn://breast_cancer",
        out,
        timeout=120,
        log_line=lines.append,
    )
    assert metrics["train_accuracy"] > 0.9
    assert any("training randomforestclassifier" in line for line in lines)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["n_features"] == 30 and metadata["classes"] == [0, 1]
    assert (out / "model.joblib").is_file()


def test_crashing_trainer_fails_with_the_tail_of_its_log(tmp_path: Path) -> None:
    """A trainer that raises fails the run with its exit code and the traceback's last lines."""
    trainer = tmp_path / "crash.py"
    trainer.write_text(
        "def train(params, data, out):\n    print('loading', data)\n    raise RuntimeError('disk full')\n"
    )
    with pytest.raises(TrainerCrashedError, match=r"exited with code 1") as info:
        run_trainer(
            str(trainer), {}, "somewhere", tmp_path / "m", timeout=60, log_line=lambda _: None
        )
    assert "RuntimeError: disk full" in str(info.value) and "loading somewhere" in str(info.value)


def test_trainer_breaking_the_contract_is_named(tmp_path: Path) -> None:
    """A trainer returning something other than dict[str, float] fails naming the bad metric."""
    trainer = tmp_path / "bad.py"
    trainer.write_text("def fit(params, data, out):\n    return {'accuracy': 'high'}\n")
    with pytest.raises(
        TrainerCrashedError, match=r"metric 'accuracy': 'high'; metrics must map str to float"
    ):
        run_trainer(f"{trainer}:fit", {}, "x", tmp_path / "m", timeout=60, log_line=lambda _: None)


def test_unimportable_entry_point_is_named(tmp_path: Path) -> None:
    """An entry point whose module does not exist fails naming the module."""
    with pytest.raises(
        TrainerCrashedError, match=r"cannot import trainer module 'no_such_pkg.mod'"
    ):
        run_trainer(
            "no_such_pkg.mod:train", {}, "x", tmp_path / "m", timeout=60, log_line=lambda _: None
        )


def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    """A trainer past its timeout is killed together with the grandchild it started."""
    pid_file = tmp_path / "grandchild.pid"
    trainer = tmp_path / "slow.py"
    trainer.write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys, time
            def train(params, data, out):
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
                open({str(pid_file)!r}, "w").write(str(child.pid))
                print("started helper", flush=True)
                time.sleep(300)
            """
        )
    )
    with pytest.raises(
        TrainerTimeoutError, match=r"(?s)exceeded its timeout of 3 s.*started helper"
    ) as info:
        run_trainer(str(trainer), {}, "x", tmp_path / "m", timeout=3, log_line=lambda _: None)
    assert "process tree" in str(info.value)
    grandchild = int(pid_file.read_text())
    assert_no_leftover_processes(
        among=[psutil.Process(grandchild)] if psutil.pid_exists(grandchild) else []
    )


def test_helper_left_behind_by_a_finished_trainer_is_killed(tmp_path: Path) -> None:
    """A helper the trainer started and left running dies once the trainer exits, though reparented."""
    pid_file = tmp_path / "helper.pid"
    trainer = tmp_path / "leaves_helper.py"
    trainer.write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys
            def train(params, data, out):
                # Off the log pipe, as a daemon would be: the run ends when the trainer does.
                child = subprocess.Popen(
                    [sys.executable, "-c", "import time; time.sleep(300)"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                open({str(pid_file)!r}, "w").write(str(child.pid))
                return {{"accuracy": 1.0}}
            """
        )
    )
    metrics = run_trainer(
        str(trainer), {}, "x", tmp_path / "m", timeout=60, log_line=lambda _: None
    )
    assert metrics == {"accuracy": 1.0}
    helper = int(pid_file.read_text())
    assert_no_leftover_processes(
        among=[psutil.Process(helper)] if psutil.pid_exists(helper) else [], timeout=0
    )


def test_unserialisable_hyperparameters_are_refused(tmp_path: Path) -> None:
    """Hyperparameters that cannot be sent to the child as JSON are refused before it starts."""
    with pytest.raises(Exception, match=r"not JSON-serialisable"):
        run_trainer(REFERENCE, {"C": object()}, "sklearn://iris", tmp_path / "m", timeout=60)


def test_local_store_copies_atomically_and_refuses_overwrite(tmp_path: Path) -> None:
    """The local store copies a directory to a file URI once and refuses to overwrite it."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.joblib").write_bytes(b"x")
    uri = (tmp_path / "store" / "run" / "model").as_uri()
    store = artifact_store_for(uri)
    assert store.put_dir(source, uri) == uri and store.exists(uri)
    with pytest.raises(ArtifactStoreError, match="already exists"):
        store.put_dir(source, uri)


def test_unknown_scheme_names_the_known_ones() -> None:
    """A URI whose scheme has no Airflow filesystem is refused; the deprecated registration still works."""
    with pytest.raises(ArtifactStoreError, match=r"no artifact store for scheme 's3'.*file://"):
        artifact_store_for("s3://bucket/model")
    with pytest.warns(DeprecationWarning, match="register an Airflow filesystem"):
        register_artifact_store("memtest", LocalArtifactStore)
    assert isinstance(artifact_store_for("memtest://x"), LocalArtifactStore)


class _MarkedStore(LocalArtifactStore):
    """A store told apart from the default one."""


@pytest.mark.parametrize("uri", ["/srv/models/m", "file:///srv/models/m"])
def test_deprecated_registration_overrides_plain_paths(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering "" or "file" (allowed before 0.2) still replaces the store for plain paths."""
    monkeypatch.setattr("mlwf_operators.artifacts._REGISTERED", {})
    scheme = urlparse(uri).scheme
    with pytest.warns(DeprecationWarning):
        register_artifact_store(scheme, _MarkedStore)
    assert isinstance(artifact_store_for(uri), _MarkedStore)


class _Ti:
    """The few task-instance attributes TrainModelOperator.execute uses."""

    dag_id, run_id, task_id, try_number = "d", "r", "train", 1

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


PROGRESS_TRAINER = """
import os, time
from mlwf_operators.trainers import report_progress
def train(params, data, out):
    if params.get("pid_file"):  # written first: the operator may stop us at any report
        open(params["pid_file"], "w").write(str(os.getpid()))
    for epoch in range(3):
        report_progress(epoch, {"val_loss": 1.0 / (epoch + 1), "epoch": epoch})
        print("plain line", flush=True)
        if params.get("pid_file") and epoch == 1:
            time.sleep(300)
    return {"loss": 0.3}
"""


def test_progress_lines_round_trip_and_other_lines_are_not_progress() -> None:
    """A progress line parses back to its step and metrics; plain or malformed lines are not progress."""
    from mlwf_operators.trainers import PROGRESS_PREFIX, parse_progress

    line = PROGRESS_PREFIX + json.dumps({"step": 4, "metrics": {"val_loss": 0.5, "acc": 1}})
    assert parse_progress(line) == (4, {"val_loss": 0.5, "acc": 1.0})
    assert parse_progress("epoch 4: val_loss 0.5") is None
    assert parse_progress(PROGRESS_PREFIX + "{not json") is None
    assert parse_progress(PROGRESS_PREFIX + '{"step": "4", "metrics": {}}') is None


def test_report_progress_refuses_a_bad_step_or_metric() -> None:
    """report_progress names a negative step or a non-numeric metric instead of printing it."""
    from mlwf_operators.trainers import report_progress

    with pytest.raises(ValueError, match="step must be an int >= 0; got -1"):
        report_progress(-1, {"loss": 1.0})
    with pytest.raises(ValueError, match="metric 'loss' must be a number; got 'low'"):
        report_progress(0, {"loss": "low"})  # type: ignore[dict-item]  # the point of the test


def test_operator_hands_each_progress_report_to_on_progress(tmp_path: Path) -> None:
    """TrainModelOperator calls on_progress once per report_progress of the trainer, in order, while logging every line."""
    from mlwf_operators.operators.training import TrainModelOperator

    seen: list[tuple[int, dict[str, float]]] = []

    class Recording(TrainModelOperator):
        def on_progress(self, step: int, metrics: dict[str, float], context: Context) -> None:
            seen.append((step, metrics))

    trainer = tmp_path / "progress_trainer.py"
    trainer.write_text(PROGRESS_TRAINER)
    ti = _Ti()
    operator = Recording(
        task_id="train",
        entry_point=str(trainer),
        data="x",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        training_timeout=120,
    )
    operator.execute({"ti": ti})  # type: ignore[typeddict-item]  # a stub of the one key execute reads
    assert seen == [(e, {"val_loss": 1.0 / (e + 1), "epoch": float(e)}) for e in range(3)]
    assert ti.xcom["metrics"] == {"loss": 0.3}


def test_exception_in_on_progress_stops_the_trainer_at_once(tmp_path: Path) -> None:
    """An exception raised by on_progress kills the still-training child and propagates from execute."""
    from mlwf_operators.operators.training import TrainModelOperator

    class StopAtEpochOne(TrainModelOperator):
        def on_progress(self, step: int, metrics: dict[str, float], context: Context) -> None:
            if step == 1:
                raise RuntimeError(f"stop at {step}")

    trainer = tmp_path / "progress_trainer.py"
    trainer.write_text(PROGRESS_TRAINER)
    operator = StopAtEpochOne(
        task_id="train",
        entry_point=str(trainer),
        data="x",
        hyperparameters={"pid_file": str(tmp_path / "trainer.pid")},
        artifact_location=(tmp_path / "artifacts").as_uri(),
        training_timeout=120,
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="stop at 1"):
        operator.execute({"ti": _Ti()})  # type: ignore[typeddict-item]  # a stub of the one key execute reads
    assert time.monotonic() - started < 60  # not the trainer's 300 s sleep
    pid = int((tmp_path / "trainer.pid").read_text())
    assert_no_leftover_processes(among=[psutil.Process(pid)] if psutil.pid_exists(pid) else [])
