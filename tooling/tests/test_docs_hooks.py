"""The docs hook: package pages and nav derived from the packages/* glob."""

from __future__ import annotations

from pathlib import Path

import docs_hooks
from mkdocs.config.defaults import MkDocsConfig
from workspace import REPO_ROOT, Package


def _package(name: str) -> Package:
    return Package(
        name=name, folder=REPO_ROOT / "packages" / name, version="0.1.0", description="d"
    )


def test_readme_links_point_at_site_pages() -> None:
    """Links to the changelog, a sibling README and a docs page become links inside the site."""
    docs_dir = REPO_ROOT / "docs"
    markdown = (
        "[log](CHANGELOG.md) [sib](../mlwf-instance/README.md#use) "
        "[start](../../docs/getting-started.md) [web](https://example.org/x.md) [top](#a)"
    )
    result = docs_hooks._rewrite_links(markdown, _package("mlwf-types"), docs_dir)
    assert "[log](changelog.md)" in result
    assert "[sib](../mlwf-instance/index.md#use)" in result
    assert "[start](../../getting-started.md)" in result
    assert "[web](https://example.org/x.md)" in result
    assert "[top](#a)" in result


def test_links_to_files_outside_the_site_become_code() -> None:
    """A link to a source file, which the site does not hold, names the file instead."""
    result = docs_hooks._rewrite_links(
        "see [the CLI](src/mlwf_types/_cli.py)", _package("mlwf-types"), REPO_ROOT / "docs"
    )
    assert result == "see the CLI (`packages/mlwf-types/src/mlwf_types/_cli.py`)"


def test_nav_has_a_section_per_package_with_its_docs_pages(tmp_path: Path) -> None:
    """Every package gets a README page; pages in docs/<package>/ follow it, index.md first."""
    for page in ["index.md", "mlwf-types/ci.md", "mlwf-types/index.md", "tutorials/first.md"]:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("# t\n", encoding="utf-8")
    config = MkDocsConfig()
    config.docs_dir = str(tmp_path)
    nav = docs_hooks.on_config(config).nav
    assert nav is not None
    sections = {
        next(iter(entry)): next(iter(entry.values())) for entry in nav if isinstance(entry, dict)
    }
    packages = {next(iter(entry)): next(iter(entry.values())) for entry in sections["Packages"]}
    assert packages["mlwf-types"][:3] == [
        {"README": "packages/mlwf-types/index.md"},
        "mlwf-types/index.md",
        "mlwf-types/ci.md",
    ]
    assert {"README": "packages/mlwf-instance/index.md"} in packages["mlwf-instance"]
    assert sections["Tutorials"] == ["tutorials/first.md"]
    assert sections["Home"] == "index.md"
    assert next(iter(nav[-1])) == "Benchmarks"
