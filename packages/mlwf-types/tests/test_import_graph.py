"""The modules of mlwf_types import each other along a graph without circles (issue 12)."""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGE = "mlwf_types"
#: An import inside a function: the policy loads the checker only when Airflow calls it.
LAZY_IMPORTER, LAZY_IMPORTED = "mlwf_types.policy", "mlwf_types._config"


def _import_graph() -> grimp.ImportGraph:
    # grimp (import-linter's engine) reads every import statement: module level, inside
    # functions, and under TYPE_CHECKING. A function-level import that dodges a circle is
    # still a circle, and so is one that only the type checker follows.
    return grimp.build_graph(PACKAGE, cache_dir=None)


def test_the_graph_sees_imports_inside_functions() -> None:
    """The graph holds an import made inside a function, so such imports cannot hide a circle."""
    graph = _import_graph()
    assert graph.direct_import_exists(importer=LAZY_IMPORTER, imported=LAZY_IMPORTED)


def test_no_module_imports_itself_through_others() -> None:
    """No chain of imports leads from a module of the package back to itself."""
    graph = _import_graph()
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as err:
        cycle = err.args[1]
        pytest.fail(f"import circle in {PACKAGE}: {' -> '.join(cycle)}")
