"""Shared plumbing of the integration tests: the one way to run an embedded Airflow instance.

Units of work (pytest-xdist, ``--dist loadfile``): every module runs whole on one worker, and so
does every test package (a folder with ``__init__.py``, such as ``laptop_instance/``, whose
modules share one package-scoped instance). See :func:`mlwf_testsupport.package_scheduler`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psutil
import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import (
    PackageScheduling,
    assert_no_leftover_processes,
    free_port,
    package_scheduler,
)
from xdist.remote import Producer

#: ``start(name, dag_sources, *, parallelism=4, extra_config=None, dag_refresh_interval=5)``.
StartInstance = Callable[..., AbstractContextManager[EmbeddedInstance]]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> PackageScheduling | None:
    """Schedule by file, but a test package (its shared instance) whole on one worker."""
    return package_scheduler(config, log)


def copy_dag_files(sources: Iterable[Path], dags: Path) -> None:
    """Copy the ``*.py`` of every source folder (or file) flat into ``dags``, refusing a name clash.

    Flat, not one subfolder each: the DAG folder is on the components' PYTHONPATH, so DAG files
    import their helper modules (``_worker``, ``epoch_trainer``) by plain name.
    """
    dags.mkdir(parents=True, exist_ok=True)
    origin: dict[str, Path] = {}
    for source in sources:
        files = [source] if source.is_file() else sorted(source.glob("*.py"))
        if not files:
            raise ValueError(f"DAG source {source} holds no *.py file")
        for file in files:
            if file.name in origin:
                raise ValueError(
                    f"DAG file name {file.name!r} is in both {origin[file.name]} and {file.parent}"
                )
            origin[file.name] = file.parent
            shutil.copy(file, dags / file.name)


@contextmanager
def embedded_instance(
    home: Path,
    dag_sources: Iterable[Path],
    *,
    parallelism: int = 4,
    extra_config: Mapping[str, Mapping[str, str]] | None = None,
    dag_refresh_interval: int = 5,
) -> Iterator[EmbeddedInstance]:
    """Run an EmbeddedInstance (LocalExecutor, SQLite) on ``home`` with a copy of the DAG sources.

    A copy: the constructors plugin and DAGs may write next to their files. On exit every
    component is stopped, and the test fails if any process of the instance is left: one seen
    in its process tree before the stop (Airflow renames its processes, so the home's path in a
    command line or environment finds only some) or one mentioning the home.
    """
    dags = home / "dags"
    copy_dag_files(dag_sources, dags)
    instance = EmbeddedInstance(
        home,
        dags_folder=dags,
        port=free_port(),
        parallelism=parallelism,
        extra_config=extra_config,
        dag_refresh_interval=dag_refresh_interval,
    )
    with instance:
        try:
            yield instance
        finally:
            seen = _live(instance.pids())
    assert_no_leftover_processes(str(home), among=seen)


def _live(pids: Iterable[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="session")
def start_instance(tmp_path_factory: pytest.TempPathFactory) -> StartInstance:
    """Return ``start(name, dag_sources, **options)``: :func:`embedded_instance` in a fresh home.

    For a module's own instance (one it restarts or kills)::

        @pytest.fixture(scope="module")
        def instance(start_instance):
            with start_instance("resume", [DAGS], extra_config=RECOVERY) as inst:
                yield inst
    """

    def start(
        name: str,
        dag_sources: Iterable[Path],
        *,
        parallelism: int = 4,
        extra_config: Mapping[str, Mapping[str, str]] | None = None,
        dag_refresh_interval: int = 5,
    ) -> AbstractContextManager[EmbeddedInstance]:
        return embedded_instance(
            tmp_path_factory.mktemp(name),
            dag_sources,
            parallelism=parallelism,
            extra_config=extra_config,
            dag_refresh_interval=dag_refresh_interval,
        )

    return start
