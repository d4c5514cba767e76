"""mkdocs hooks: the package section of the docs site, derived from the `packages/*` glob.

Registered in mkdocs.yml (`hooks: [tooling/docs_hooks.py]`). For every package it adds

* `packages/<name>/index.md`: the package's README.md (relative links rewritten for the site),
* `packages/<name>/changelog.md`: its CHANGELOG.md, when there is one,
* every hand-written page under `docs/<name>/` (e.g. `docs/mlwf-types/ci.md`), after the README
  (`index.md` first, then by file name),

and `packages/index.md`, a table of all packages. A `<!-- mlwf:packages-table -->` line in any
page is replaced by the same table. Nothing here names a package: adding a folder under
packages/ adds its pages. Any other page not in the fixed nav is appended to the nav, so a new
page is never unreachable.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import REPO_ROOT, Package, discover_packages

TABLE_MARKER = "<!-- mlwf:packages-table -->"
# Pages with a fixed place in the nav, in this order; generated sections are put between them.
HEAD_PAGES = [("Home", "index.md"), ("Getting started", "getting-started.md")]
TAIL_PAGES = [
    ("Contributing", "contributing.md"),
    ("Releasing", "releasing.md"),
    ("Benchmarks", "benchmarks.md"),
]
# An inline link or image: [text](target "title")
_LINK = re.compile(
    r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)"
)


def _packages() -> dict[str, Package]:
    return discover_packages(REPO_ROOT)


def _package_pages(docs_dir: Path, name: str) -> list[str]:
    """Return the hand-written pages of `docs/<name>/`, index.md first, as docs-relative URIs."""
    folder = docs_dir / name
    pages = sorted(folder.rglob("*.md"), key=lambda p: (p.name != "index.md", str(p)))
    return [page.relative_to(docs_dir).as_posix() for page in pages]


def packages_table(prefix: str = "") -> str:
    """Return a Markdown table of every package: name (linked), version, description."""
    rows = ["| package | version | what it is for |", "|---|---|---|"]
    for name, package in sorted(_packages().items()):
        description = package.description.replace("|", "\\|")
        link = f"{prefix}packages/{name}/index.md"
        rows.append(f"| [{name}]({link}) | {package.version} | {description} |")
    return "\n".join(rows)


def _rewrite_links(markdown: str, package: Package, docs_dir: Path) -> str:
    """Point a README's relative links at the site's pages; unlinkable ones become code spans."""
    page_dir = docs_dir / "packages" / package.name

    def replace(match: re.Match[str]) -> str:
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return match.group(0)  # absolute URL, mailto:, or an anchor on the same page
        path_part, _, fragment = target.partition("#")
        fragment = f"#{fragment}" if fragment else ""
        resolved = (package.folder / path_part).resolve()
        new_target: str | None = None
        if resolved.name == "README.md" and resolved.parent.parent == REPO_ROOT / "packages":
            new_target = os.path.relpath(
                page_dir.parent / resolved.parent.name / "index.md", page_dir
            )
        elif resolved == package.folder / "CHANGELOG.md":
            new_target = "changelog.md"
        elif resolved.is_relative_to(docs_dir) and resolved.exists():
            new_target = os.path.relpath(resolved, page_dir)
        if new_target is not None:
            title = match.group("title") or ""
            return f"{match.group('bang')}[{match.group('text')}]({new_target}{fragment}{title})"
        # A file of the repository that is not part of the site: name it instead of linking it.
        shown = os.path.relpath(resolved, REPO_ROOT)
        return f"{match.group('text')} (`{shown}`)" if match.group("text") else f"`{shown}`"

    return _LINK.sub(replace, markdown)


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Build the nav: fixed pages, then one section per package, then any other page."""
    docs_dir = Path(config.docs_dir)
    packages = _packages()
    package_sections: list[Any] = [{"Overview": "packages/index.md"}]
    for name, package in sorted(packages.items()):
        section: list[Any] = [{"README": f"packages/{name}/index.md"}]
        section.extend(_package_pages(docs_dir, name))
        if (package.folder / "CHANGELOG.md").is_file():
            section.append({"Changelog": f"packages/{name}/changelog.md"})
        package_sections.append({name: section})

    fixed = {uri for _, uri in HEAD_PAGES + TAIL_PAGES}
    other_sections: dict[str, list[str]] = {}
    other_pages: list[str] = []
    for page in sorted(docs_dir.rglob("*.md")):
        uri = page.relative_to(docs_dir).as_posix()
        top = uri.split("/", 1)[0]
        if uri in fixed or top in packages or top == "packages":
            continue
        if "/" in uri:
            other_sections.setdefault(top, []).append(uri)
        else:
            other_pages.append(uri)

    nav: list[Any] = [{title: uri} for title, uri in HEAD_PAGES]
    nav.extend(other_pages)
    nav.append({"Packages": package_sections})
    for folder, pages in sorted(other_sections.items()):
        nav.append({folder.replace("-", " ").replace("_", " ").capitalize(): pages})
    nav.extend({title: uri} for title, uri in TAIL_PAGES)
    config.nav = nav
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated package pages to the site."""
    docs_dir = Path(config.docs_dir)
    overview = "# Packages\n\nEach package is versioned and released on its own.\n\n"
    files.append(File.generated(config, "packages/index.md", content=overview + TABLE_MARKER))
    for name, package in sorted(_packages().items()):
        readme = package.folder / "README.md"
        content = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {name}\n"
        content = _rewrite_links(content, package, docs_dir)
        files.append(File.generated(config, f"packages/{name}/index.md", content=content))
        changelog = package.folder / "CHANGELOG.md"
        if changelog.is_file():
            text = _rewrite_links(changelog.read_text(encoding="utf-8"), package, docs_dir)
            files.append(File.generated(config, f"packages/{name}/changelog.md", content=text))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the packages-table marker with the table, linked relative to the page."""
    if TABLE_MARKER not in markdown:
        return markdown
    depth = page.file.src_uri.count("/")
    return markdown.replace(TABLE_MARKER, packages_table("../" * depth))
