"""Run at start-up by every process of an mlwf instance on MySQL/MariaDB (see README.md here).

Airflow 3.3.2's scheduler builds its asset-orphanage query as a CTE and hands it to a DELETE
(``WITH anon_1 AS (...) DELETE FROM asset_active ...``), which MariaDB refuses (error 1064):
the scheduler loop dies every ``[scheduler] parsing_cleanup_interval`` (apache/airflow#72187,
fix proposed in apache/airflow#72188: a subquery instead of the CTE, same meaning). Until then,
``SchedulerJobRunner._update_asset_orphanage`` builds subqueries where it asked for CTEs, on
this instance only. Another ``sitecustomize`` later on ``sys.path`` still runs.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

_TARGET = "airflow.jobs.scheduler_job_runner"
_here = __file__.rsplit("/", 1)[0]
_lock = threading.Lock()


@contextlib.contextmanager
def _ctes_as_subqueries() -> Iterator[None]:
    from sqlalchemy.sql.selectable import Select

    def as_subquery(self: Any, name: str | None = None, *_args: Any, **_kwargs: Any) -> Any:
        return self.subquery(name)

    with _lock:
        Select.cte = as_subquery  # type: ignore[method-assign]
        try:
            yield
        finally:
            del Select.cte  # HasCTE.cte again


def _patch(module: ModuleType) -> None:
    runner = getattr(module, "SchedulerJobRunner", None)
    original = getattr(runner, "_update_asset_orphanage", None)
    if runner is None or original is None or getattr(original, "_mlwf_patched", False):
        return

    def _update_asset_orphanage(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _ctes_as_subqueries():
            return original(self, *args, **kwargs)

    _update_asset_orphanage._mlwf_patched = True  # type: ignore[attr-defined]
    runner._update_asset_orphanage = _update_asset_orphanage


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch the scheduler module right after it is imported (it is imported late, if at all)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module: Callable[[ModuleType], None] = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _PatchOnImport())


def _chain() -> None:
    """Run the next ``sitecustomize`` on sys.path, which this module shadows."""
    others = [p for p in sys.path if p.rstrip("/") != _here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None and spec.origin != __file__:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain()
