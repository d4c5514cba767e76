"""Model files are loaded only by a plain name inside the model directory and with the SHA-256 recorded at training."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from mlwf_operators.model_files import (
    HASH_KEY,
    METADATA_FILE,
    ModelFileError,
    read_verified_model_bytes,
    seal_model_dir,
    sha256_of,
)
from mlwf_operators.operators.validation import ValidateModelOperator
from mlwf_operators.serving import start_service
from mlwf_operators.trainers.sklearn_reference import evaluate, load_model


class _TouchOnUnpickle:
    """A pickle payload that creates a file when it is unpickled: it shows whether a load ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def model_dir(trained_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's reference model directory, free to tamper with."""
    return Path(shutil.copytree(trained_model_dir, tmp_path / "model"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a malicious pickle would create if it were ever unpickled."""
    return tmp_path / "pwned"


def _evil_pickle(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_TouchOnUnpickle(marker)))
    return path


def _set_metadata(model_dir: Path, **changes: object) -> None:
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    metadata.update(changes)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata))


def test_reference_trainer_records_the_hash_and_loads(model_dir: Path) -> None:
    """Issue 10 item 9: the reference trainer records the model file's SHA-256 and a sealed model loads."""
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert metadata["model_file"] == "model.joblib"
    assert metadata[HASH_KEY] == sha256_of(model_dir / "model.joblib")
    model, loaded = load_model(model_dir)
    assert loaded == metadata
    assert hasattr(model, "predict")


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "subdir", "dot"])
def test_model_file_outside_the_directory_is_refused(
    model_dir: Path, marker: Path, tmp_path: Path, kind: str
) -> None:
    """Issue 10 item 9: a model_file that is absolute, holds '..' or a separator is refused naming it, and nothing is unpickled."""
    evil = _evil_pickle(tmp_path / "elsewhere" / "evil.pkl", marker)
    name = {
        "absolute": str(evil),
        "dotdot": "../elsewhere/evil.pkl",
        "subdir": "sub/evil.pkl",
        "dot": ".",
    }[kind]
    if kind == "subdir":
        _evil_pickle(model_dir / "sub" / "evil.pkl", marker)
    # Even with the hash of the evil file recorded: the name alone is refused.
    _set_metadata(model_dir, model_file=name, **{HASH_KEY: sha256_of(evil)})
    with pytest.raises(ModelFileError, match="must be a plain file name") as info:
        load_model(model_dir)
    assert repr(name) in str(info.value)
    assert not marker.exists()


def test_symlink_out_of_the_directory_is_refused(
    model_dir: Path, marker: Path, tmp_path: Path
) -> None:
    """Issue 10 item 9: a model file that is a symlink out of the model directory is refused naming both paths."""
    evil = _evil_pickle(tmp_path / "elsewhere" / "evil.pkl", marker)
    (model_dir / "model.joblib").unlink()
    (model_dir / "model.joblib").symlink_to(evil)
    _set_metadata(model_dir, **{HASH_KEY: sha256_of(evil)})
    with pytest.raises(ModelFileError, match=r"is a symlink to .*evil\.pkl, outside the model"):
        load_model(model_dir)
    assert not marker.exists()


def test_symlink_inside_the_directory_is_followed(model_dir: Path) -> None:
    """A model file that is a symlink to a file in the same directory loads (it does not leave it)."""
    (model_dir / "model.joblib").rename(model_dir / "real.joblib")
    (model_dir / "model.joblib").symlink_to("real.joblib")
    model, _ = load_model(model_dir)
    assert hasattr(model, "predict")


def test_replaced_model_file_is_refused(model_dir: Path, marker: Path) -> None:
    """Issue 10 item 9: a model file replaced after training fails its SHA-256 check naming the file, unloaded."""
    _evil_pickle(model_dir / "model.joblib", marker)
    with pytest.raises(
        ModelFileError,
        match=r"model\.joblib has SHA-256 [0-9a-f]{64}, but .*metadata\.json records",
    ):
        load_model(model_dir)
    assert not marker.exists()


def test_model_without_a_recorded_hash_is_refused_with_retrain_advice(
    model_dir: Path, marker: Path
) -> None:
    """Issue 10 item 9: a model directory from before hashes were recorded is refused, saying to retrain."""
    _evil_pickle(model_dir / "model.joblib", marker)
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    del metadata[HASH_KEY]
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ModelFileError, match=r"model\.joblib has no SHA-256 recorded.*Retrain"):
        load_model(model_dir)
    assert not marker.exists()


def test_non_string_model_file_and_bad_metadata_are_refused(model_dir: Path) -> None:
    """A model_file that is not a string, or a metadata.json that is not a JSON object, is named as the fault."""
    _set_metadata(model_dir, model_file=["model.joblib"])
    with pytest.raises(ModelFileError, match="'model_file' must be a file name"):
        read_verified_model_bytes(model_dir)
    (model_dir / METADATA_FILE).write_text("[1, 2]")
    with pytest.raises(ModelFileError, match=r"metadata\.json must hold a JSON object"):
        read_verified_model_bytes(model_dir)


def test_seal_model_dir_refuses_a_path(tmp_path: Path) -> None:
    """A trainer cannot seal a model file outside its output directory."""
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelFileError, match="must be a plain file name"):
        seal_model_dir(tmp_path / "m", {}, "../x.joblib")


def test_evaluator_and_validation_refuse_a_tampered_model(model_dir: Path, marker: Path) -> None:
    """Issue 10 item 9: the default evaluator and ValidateModelOperator refuse a tampered model without unpickling it."""
    _evil_pickle(model_dir / "model.joblib", marker)
    with pytest.raises(ModelFileError, match="SHA-256"):
        evaluate(model_dir, "sklearn://breast_cancer")
    op = ValidateModelOperator(
        task_id="v", model_uri=model_dir.as_uri(), thresholds={"accuracy": 0.5}
    )
    with pytest.raises(ModelFileError, match="SHA-256"):
        op.execute({})  # type: ignore[arg-type]
    assert not marker.exists()


def test_serving_refuses_a_tampered_model_before_starting(
    model_dir: Path, marker: Path, tmp_path: Path
) -> None:
    """Issue 10 item 9: start_service refuses a tampered model naming the file, with no process or state file left."""
    _evil_pickle(model_dir / "model.joblib", marker)
    state_file = tmp_path / "svc.json"
    with pytest.raises(ModelFileError, match=r"model\.joblib has SHA-256"):
        start_service(model_dir.as_uri(), state_file, startup_timeout=30)
    assert not state_file.exists()
    assert not marker.exists()
