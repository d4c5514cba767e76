"""pytest-xdist scheduling by file, except that a test package runs whole on one worker.

With ``--dist loadfile`` every test module is a unit of work, so module-scoped fixtures (an
Airflow instance) start once per module. Modules that share a package-scoped fixture (one
Airflow instance for several modules) must also run on one worker, one after the other, or each
worker would start its own copy: :class:`PackageScheduling` makes every test package (a folder
holding ``__init__.py``) one unit. A conftest opts in through the ``pytest_xdist_make_scheduler``
hook (see :func:`package_scheduler`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling


def top_package(module: Path, root: Path) -> Path | None:
    """Return the outermost folder holding ``__init__.py`` between ``root`` and ``module``.

    Only folders below ``root`` count; None if the module is in no such package.
    """
    found = None
    folder = module.parent
    while folder != root and root in folder.parents:
        if (folder / "__init__.py").is_file():
            found = folder
        folder = folder.parent
    return found


class PackageScheduling(LoadFileScheduling):
    """``--dist loadfile``, but all modules of a test package (below rootdir) are one unit.

    A unit runs on one worker from its first test to its last, so a package-scoped fixture is
    set up once and torn down as soon as the package is done.
    """

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.log = Producer("packagesched") if log is None else log.packagesched
        self._root = config.rootpath

    def _split_scope(self, nodeid: str) -> str:
        """Return the unit of ``nodeid``: its top-level test package if any, else its file."""
        module = nodeid.split("::", 1)[0]
        package = top_package(self._root / module, self._root)
        if package is None:
            return module
        return f"{package.relative_to(self._root).as_posix()}/"


def package_scheduler(config: pytest.Config, log: Producer) -> PackageScheduling | None:
    """Return a :class:`PackageScheduling` for ``--dist loadfile``, else None (xdist decides).

    For a conftest::

        def pytest_xdist_make_scheduler(config, log):
            return package_scheduler(config, log)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    return PackageScheduling(config, log)
