"""Training runs in a real child process: the reference trainer, crashes, timeouts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest
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
    """A URI whose scheme has no store is refused listing the schemes that have one."""
    with pytest.raises(ArtifactStoreError, match=r"no artifact store for scheme 's3'.*file://"):
        artifact_store_for("s3://bucket/model")
    register_artifact_store("memtest", LocalArtifactStore)
    assert isinstance(artifact_store_for("memtest://x"), LocalArtifactStore)
