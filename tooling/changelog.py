"""Read and rewrite a package's CHANGELOG.md (Keep a Changelog) for a release.

The `## Unreleased` section decides the version bump: each `### Heading` (its first word; a note
in parentheses after it, as in `### Changed (issue 12: structure)`, is ignored) maps to a level,
and the highest level wins. An entry marked `**Breaking:**` under any heading is a breaking
change. Why each heading maps where it does: docs/releasing.md, "Versioning rules".
Standard library only, so it runs before any environment is synced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUMP_ORDER",
    "HEADING_BUMPS",
    "ChangelogError",
    "Unreleased",
    "read_unreleased",
    "release_section",
    "start_release",
]

#: The levels of a version bump, lowest first.
BUMP_ORDER = ("patch", "minor", "major")

#: The bump each `### Heading` of `## Unreleased` asks for (the heading's first word, lowercased).
HEADING_BUMPS = {
    "breaking": "major",  # a change that breaks users' code or data
    "removed": "major",  # a removed public name, option or behaviour breaks whoever used it
    "added": "minor",
    "changed": "minor",  # changed behaviour that is not breaking (breaking entries say so)
    "deprecated": "minor",  # semantic versioning: a new deprecation is a minor release
    "fixed": "patch",
    "security": "patch",  # a fix; a security fix that breaks something is marked **Breaking:**
    "performance": "patch",  # same behaviour, faster
}

_VERSION_HEADING = re.compile(r"^## (?P<title>.+?)\s*$")
_SUBSECTION = re.compile(r"^### (?P<word>[A-Za-z]+)\b.*$")
_BREAKING_MARK = re.compile(r"\*\*breaking(?: change)?:?\*\*", re.IGNORECASE)


class ChangelogError(Exception):
    """A CHANGELOG.md that does not have the shape a release needs."""


@dataclass(frozen=True)
class Unreleased:
    """The `## Unreleased` section of one CHANGELOG.md."""

    headings: tuple[str, ...]
    """The first word of each `###` heading, lowercased, in order (e.g. `added`, `fixed`)."""
    breaking: bool
    """An entry is marked `**Breaking:**`."""
    body: str
    """The section's text between its heading and the next `## ` heading, stripped."""

    @property
    def bump(self) -> str | None:
        """Return `major`, `minor` or `patch` (before 1.0 see `effective_bump`); None if empty."""
        if self.breaking:
            return "major"
        levels = [HEADING_BUMPS[heading] for heading in self.headings]
        return max(levels, key=BUMP_ORDER.index) if levels else None


def _sections(text: str) -> list[tuple[str, int, int]]:
    """Return `(title, first body line, end line)` of every `## ` section of `text`'s lines."""
    lines = text.splitlines()
    starts = [
        (i, m.group("title")) for i, line in enumerate(lines) if (m := _VERSION_HEADING.match(line))
    ]
    return [
        (title, start + 1, starts[n + 1][0] if n + 1 < len(starts) else len(lines))
        for n, (start, title) in enumerate(starts)
    ]


def _find(path: Path, text: str, title: str) -> tuple[int, int]:
    matches = [(start, end) for t, start, end in _sections(text) if t == title]
    if not matches:
        raise ChangelogError(f"{path}: no `## {title}` section")
    if len(matches) > 1:
        raise ChangelogError(f"{path}: {len(matches)} `## {title}` sections; keep one")
    return matches[0]


def read_unreleased(path: Path) -> Unreleased:
    """Return the `## Unreleased` section of the changelog at `path`.

    Raises ChangelogError naming the file (and the line) if the section is missing, an entry
    stands outside a `###` subsection, or a heading is not one of `HEADING_BUMPS`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ChangelogError(f"{path}: cannot read: {error}") from error
    start, end = _find(path, text, "Unreleased")
    lines = text.splitlines()
    headings: list[str] = []
    for number in range(start, end):
        line = lines[number]
        if line.startswith("### "):
            match = _SUBSECTION.match(line)
            word = match.group("word").lower() if match else ""
            if word not in HEADING_BUMPS:
                known = ", ".join(f"### {h.capitalize()}" for h in HEADING_BUMPS)
                raise ChangelogError(
                    f"{path}:{number + 1}: unknown heading {line!r} under ## Unreleased; "
                    f"use one of {known}"
                )
            headings.append(word)
        elif line.strip() and not headings:
            raise ChangelogError(
                f"{path}:{number + 1}: entry under ## Unreleased outside a `### ` subsection "
                "(### Added, ### Changed, ### Fixed, ...): the subsection decides the version bump"
            )
    body = "\n".join(lines[start:end]).strip()
    return Unreleased(tuple(headings), bool(_BREAKING_MARK.search(body)), body)


def release_section(path: Path, version: str) -> str:
    """Return the body of the `## <version> - <date>` section (the tag's message)."""
    text = path.read_text(encoding="utf-8")
    for title, start, end in _sections(text):
        if title.split(" ", 1)[0] == version:
            return "\n".join(text.splitlines()[start:end]).strip()
    raise ChangelogError(
        f"{path}: no `## {version} - YYYY-MM-DD` section (run `release.py prepare` first)"
    )


def start_release(path: Path, version: str, date: str, *, fallback: str = "") -> None:
    """Move the `## Unreleased` entries under `## <version> - <date>`; leave Unreleased empty.

    `fallback` is the body written when Unreleased is empty (a release that only moves a
    sibling's version range).
    """
    text = path.read_text(encoding="utf-8")
    start, end = _find(path, text, "Unreleased")
    lines = text.splitlines()
    body = "\n".join(lines[start:end]).strip() or fallback.strip()
    if not body:
        raise ChangelogError(f"{path}: ## Unreleased is empty; nothing to release")
    new = [*lines[: start - 1], "## Unreleased", "", f"## {version} - {date}", "", body, ""]
    new.extend(lines[end:])
    path.write_text("\n".join(new).rstrip("\n") + "\n", encoding="utf-8")
