"""The root README's package table names every package of the workspace."""

from __future__ import annotations

from workspace import REPO_ROOT, discover_packages


def test_readme_lists_every_package() -> None:
    """Each `packages/*` folder appears as a linked row of the README's package table."""
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [
        name for name in discover_packages(REPO_ROOT) if f"[{name}](packages/{name}/)" not in readme
    ]
    assert missing == [], f"add these packages to the table in README.md: {missing}"
