"""The spec reference page is generated from the schema and the example specs, and is current."""

from __future__ import annotations

from pathlib import Path

from mlwf_instance._spec import load_spec
from mlwf_instance.spec_docs import REGENERATE, render_reference

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "instances"
PAGE = REPO / "docs" / "mlwf-instance" / "spec.md"


def test_every_example_spec_is_valid_and_about_ten_lines() -> None:
    """Issue 11: each spec in examples/instances validates and stays short (at most 16 lines)."""
    specs = sorted(EXAMPLES.glob("*.json"))
    assert [p.name for p in specs] == [
        "laptop.json",
        "team-ldap.json",
        "team-mariadb.json",
        "team-postgres.json",
        "team-redis.json",
    ]
    for path in specs:
        spec = load_spec(path)
        assert len(path.read_text().splitlines()) <= 16, path.name
        if spec.database.kind != "sqlite":
            assert spec.database.password is not None and spec.database.password.env, path.name
    laptop = load_spec(EXAMPLES / "laptop.json")
    assert laptop.name == "laptop" and laptop.executor == "local"
    assert [f.path.resolve() for f in laptop.dag_folders] == [(REPO / "examples" / "dags")]


def test_the_committed_spec_reference_is_what_the_schema_generates() -> None:
    """Issue 11: docs/mlwf-instance/spec.md equals the page generated from the schema now."""
    expected = render_reference(EXAMPLES)
    assert PAGE.read_text(encoding="utf-8") == expected, (
        f"{PAGE.relative_to(REPO)} is stale: regenerate it with `{REGENERATE}`"
    )


def test_the_reference_documents_every_field_and_embeds_the_examples() -> None:
    """Issue 11: the page has a row per top-level field and each example spec's text."""
    page = render_reference(EXAMPLES)
    for field in ("name", "database", "executor", "celery", "dag_folders", "airflow_config"):
        assert f"| `{field}` |" in page
    for path in EXAMPLES.glob("*.json"):
        assert path.read_text().rstrip("\n") in page
    assert '| `[core] executor` | the spec\'s "executor" field |' in page
