"""Render an instance spec for a target (local, Helm, Kubernetes) and write the files safely.

:func:`render` returns the files of a target without touching the disk; :func:`write_rendered`
writes them into an output folder: all files are first written into a private staging folder
beside it, then each is moved into place with an atomic rename, so a failed render leaves the
folder as it was and a reader never sees a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from mlwf_instance._render_helm import render_helm
from mlwf_instance._render_kubernetes import render_kubernetes
from mlwf_instance._render_local import render_local
from mlwf_instance._render_model import RenderedFile, RenderError
from mlwf_instance._spec import InstanceSpec

TARGETS: dict[str, Callable[[InstanceSpec], list[RenderedFile]]] = {
    "local": render_local,
    "helm": render_helm,
    "kubernetes": render_kubernetes,
}


def render(spec: InstanceSpec, target: str) -> list[RenderedFile]:
    """Return the files of ``target`` for ``spec``; RenderError names what cannot be rendered."""
    try:
        renderer = TARGETS[target]
    except KeyError:
        raise RenderError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}") from None
    if spec.database.kind == "postgresql" and urlsplit(spec.database.url).query:
        # A rendered instance lets Airflow derive the asyncpg URL from sql_alchemy_conn, query
        # included, and asyncpg refuses libpq's parameters (sslmode, connect_timeout, ...).
        raise RenderError(
            "database.url: query parameters work with `mlwf instance up` only; a rendered "
            "instance's async driver (asyncpg) refuses them. Remove them and set TLS through "
            "libpq's environment instead (PGSSLMODE, PGSSLROOTCERT, ...), which both drivers read"
        )
    return renderer(spec)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RenderError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RenderError(
            f"--out {out}: the folder is not empty; choose an empty or new folder, or pass "
            f"--force to replace the files render writes"
        )


def _safe_relative(path: str) -> Path:
    relative = Path(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise RenderError(f"refusing to write {path!r} outside the output folder")
    return relative


def write_rendered(files: Sequence[RenderedFile], out: Path, *, force: bool = False) -> list[Path]:
    """Write ``files`` under ``out`` and return their paths.

    Refuses a non-empty ``out`` unless ``force`` (then the rendered files replace those of the
    same name; other files stay). Each file gets its mode before it holds any content.
    """
    _check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.render-", dir=out.parent))
    try:
        staged: list[tuple[Path, Path]] = []
        for item in files:
            relative = _safe_relative(item.path)
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, item.mode)
            os.fchmod(fd, item.mode)  # not narrowed by a lax umask, not widened by a strict one
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(item.content)
            staged.append((target, relative))
        out.mkdir(exist_ok=True)
        written = []
        for source, relative in staged:
            destination = out / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
            written.append(destination)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
