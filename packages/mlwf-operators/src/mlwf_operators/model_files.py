"""The model file of a model directory: its name and SHA-256 in ``metadata.json``, checked before loading.

Loading a model unpickles it (``joblib.load``), which runs whatever code the file holds. So a
model file is loaded only if ``metadata.json`` names it by a plain file name inside the model
directory (no separator, no ``..``, not a symlink out of the directory) and its bytes have the
SHA-256 recorded there when the model was trained (:func:`seal_model_dir`). The hash catches a
model file replaced or corrupted after training; it cannot vouch for a directory someone wrote
whole (metadata and all), so model URIs must still come from a trusted source, such as the
output of the train task. A directory without a recorded hash (trained before mlwf-operators
recorded one) is refused with a message saying to retrain it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from mlwf_operators._errors import ModelFileError

__all__ = [
    "MODEL_FILE",
    "METADATA_FILE",
    "HASH_KEY",
    "ModelFileError",
    "sha256_of",
    "seal_model_dir",
    "read_metadata",
    "read_verified_model_bytes",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
#: The ``metadata.json`` key holding the hex SHA-256 of the model file.
HASH_KEY = "model_sha256"
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def seal_model_dir(
    model_dir: Path, metadata: dict[str, Any], model_file: str = MODEL_FILE
) -> dict[str, Any]:
    """Write ``metadata.json`` into ``model_dir`` naming ``model_file`` with its SHA-256; return it.

    Call it at the end of training, after the model file is written: a trainer whose model
    directory is served or validated by mlwf must record the hash this way.
    """
    _check_name(model_dir, model_file)
    path = _inside(model_dir, model_file)
    sealed = {**metadata, "model_file": model_file, HASH_KEY: sha256_of(path)}
    (model_dir / METADATA_FILE).write_text(json.dumps(sealed, indent=2), encoding="utf-8")
    return sealed


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """Return the JSON object in ``model_dir/metadata.json`` or fail naming the file."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"model directory {model_dir} has no {METADATA_FILE}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path} must hold a JSON object, not {type(metadata).__name__}")
    return metadata


def read_verified_model_bytes(model_dir: Path) -> tuple[bytes, dict[str, Any]]:
    """Return ``(model file bytes, metadata)`` once the name and SHA-256 in ``metadata.json`` check out.

    The bytes returned are the bytes hashed: loading them (``joblib.load(io.BytesIO(data))``)
    cannot race a file swapped between the check and the load.
    """
    metadata = read_metadata(model_dir)
    name = metadata.get("model_file", MODEL_FILE)
    if not isinstance(name, str):
        raise ModelFileError(
            f"{model_dir / METADATA_FILE}: 'model_file' must be a file name, not {name!r}"
        )
    _check_name(model_dir, name)
    path = model_dir / name
    real = _inside(model_dir, name)
    expected = metadata.get(HASH_KEY)
    if not isinstance(expected, str) or not expected:
        raise ModelFileError(
            f"model file {path} has no SHA-256 recorded in {model_dir / METADATA_FILE} "
            f"(key {HASH_KEY!r}), so it is not loaded: the model was trained before mlwf-operators "
            "recorded one, or by a trainer that does not call "
            "mlwf_operators.model_files.seal_model_dir. Retrain the model."
        )
    # The real path was checked to be inside the directory; O_NOFOLLOW refuses a symlink put in
    # its place since, rather than follow it out.
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ModelFileError(f"cannot open model file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ModelFileError(f"model file {path} is not a regular file")
        data = file.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise ModelFileError(
            f"model file {path} has SHA-256 {actual}, but {model_dir / METADATA_FILE} records "
            f"{expected}: the file changed after training; refusing to load it"
        )
    return data, metadata


def _check_name(model_dir: Path, name: str) -> None:
    """Refuse anything but a plain file name: no separator, no ``.``/``..``, not absolute, no NUL."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise ModelFileError(
            f"{model_dir / METADATA_FILE}: 'model_file' must be a plain file name inside the model "
            f"directory (no path separator, no '..'), not {name!r}"
        )


def _inside(model_dir: Path, name: str) -> Path:
    """Return the real path of ``model_dir/name``, an existing file directly inside ``model_dir``."""
    path = model_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"model directory {model_dir} has no model file {name!r}")
    real_dir = model_dir.resolve()
    if path.resolve().parent != real_dir:
        raise ModelFileError(
            f"model file {path} is a symlink to {path.resolve()}, outside the model directory "
            f"{real_dir}; refusing to load it"
        )
    return path.resolve()
