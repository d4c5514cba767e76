"""The example DAGs of the HDFS, JIRA, Jenkins and model-registry pages define and type-check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlwf_types import check_dag

DOCS = Path(__file__).resolve().parents[3] / "docs" / "mlwf-operators"
PAGES = ["hdfs.md", "jira.md", "jenkins.md", "model-registry.md"]


@pytest.mark.parametrize("page", PAGES)
def test_example_dag_defines_without_type_errors(page: str) -> None:
    """The page's DAG example runs as a DAG file and mlwf-types finds no error in it."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    dag_blocks = [b for b in blocks if "with DAG(" in b]
    assert dag_blocks, f"{page} has no DAG example"
    namespace: dict[str, object] = {}
    exec(compile(dag_blocks[0], f"{page}:example", "exec"), namespace)
    dag = namespace["dag"]
    errors = [str(i) for i in check_dag(dag) if i.severity == "error"]  # type: ignore[arg-type]
    assert errors == []
