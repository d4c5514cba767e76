"""release.py build and publish on clones of this repository, with a real local index (pypiserver)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from dist_check import check_wheel
from local_index import free_port, local_index
from workspace import discover_packages

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "tooling" / "release.py"
SECRET = "not-a-real-password-4f1c"


def _release(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE), "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def _clone(destination: Path, commit: str) -> Path:
    """A fresh clone of this repository at `commit` (committed files only, new mtimes, another path)."""
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(destination)], check=True
    )
    subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=destination, check=True)
    return destination


@pytest.fixture(scope="module")
def commit() -> str:
    """This repository's HEAD when the module starts (others may commit while it runs)."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, commit: str) -> Path:
    """mlwf-types and mlwf-ui built by `release.py build` from a clone, into `<tmp>/dist`."""
    clone = _clone(tmp_path_factory.mktemp("first") / "repo", commit)
    out = clone.parent / "dist"
    completed = _release(clone, "build", "--out-dir", str(out), "mlwf-types", "mlwf-ui")
    assert completed.returncode == 0, completed.stderr
    return out


def test_builds_of_two_clones_are_byte_identical(built: Path, commit: str, tmp_path: Path) -> None:
    """The same commit, cloned to another path at another time, builds the same bytes."""
    clone = _clone(tmp_path / "elsewhere", commit)
    completed = _release(
        clone, "build", "--out-dir", str(tmp_path / "dist"), "mlwf-types", "mlwf-ui"
    )
    assert completed.returncode == 0, completed.stderr
    first = sorted(p.relative_to(built) for p in built.rglob("*.*") if p.is_file())
    assert [p.suffix for p in first].count(".whl") == 2
    assert first == sorted(
        p.relative_to(tmp_path / "dist") for p in (tmp_path / "dist").rglob("*.*")
    )
    differing = [
        p for p in first if (built / p).read_bytes() != (tmp_path / "dist" / p).read_bytes()
    ]
    assert differing == []


def test_the_built_wheels_pass_the_content_checks(built: Path) -> None:
    """The UI wheel ships its bundle, a license and py.typed, and no tests or byte code."""
    [wheel] = (built / "mlwf-ui").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "mlwf_ui/static/main.js" in names
    assert "mlwf_ui-0.1.0.dist-info/licenses/LICENSE" in names or any(
        "/licenses/LICENSE" in n for n in names
    )
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_the_wheel_check_names_every_problem(tmp_path: Path) -> None:
    """A wheel with tests, byte code, no marker, no license and bad sibling pins gets each named."""
    package = discover_packages(ROOT)["mlwf-types"]
    wheel = tmp_path / "mlwf_types-9.0.0-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.4\nName: mlwf-types\nVersion: 9.0.0\n"
        "Requires-Dist: mlwf-testsupport\nRequires-Dist: mlwf-operators==0.1.0\nRequires-Dist: mlwf-ui\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mlwf_types/__init__.py", "")
        archive.writestr("mlwf_types/__pycache__/__init__.cpython-311.pyc", b"")
        archive.writestr("tests/test_x.py", "")
        archive.writestr("mlwf_types-9.0.0.dist-info/METADATA", metadata)
    problems = "\n".join(check_wheel(package, wheel, {"mlwf-operators", "mlwf-ui"}))
    for expected in (
        "no mlwf_types/py.typed",
        "no license file",
        "no License-Expression",
        "holds tests, byte code or caches",
        "requires unpublished 'mlwf-testsupport'",
        "sibling 'mlwf-operators' pinned exactly",
        "sibling 'mlwf-ui' needs a version range",
    ):
        assert expected in problems


def test_publish_uploads_to_a_real_index_without_printing_the_password(
    built: Path, tmp_path: Path
) -> None:
    """twine uploads both files to pypiserver; they install from it; the password is never shown."""
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "TWINE_PASSWORD": SECRET}
    with local_index(tmp_path / "packages") as url:
        completed = _release(
            ROOT,
            "publish",
            "--index",
            url,
            "--username",
            "ci",
            "--out-dir",
            str(built),
            "mlwf-types",
            env=env,
        )
        assert completed.returncode == 0, completed.stderr
        assert SECRET not in completed.stdout + completed.stderr
        with urllib.request.urlopen(f"{url}simple/mlwf-types/") as page:
            listing = page.read().decode()
        assert (
            "mlwf_types-0.1.0-py3-none-any.whl" in listing and "mlwf_types-0.1.0.tar.gz" in listing
        )
        venv = tmp_path / "venv"
        subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--python",
                str(venv / "bin/python"),
                "--no-deps",
                "--index-url",
                f"{url}simple/",
                "mlwf-types==0.1.0",
            ],
            check=True,
        )
    installed = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "import importlib.metadata as m; print(m.version('mlwf-types'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.strip() == "0.1.0"
    assert sorted(p.name for p in (tmp_path / "packages").iterdir()) == [
        "mlwf_types-0.1.0-py3-none-any.whl",
        "mlwf_types-0.1.0.tar.gz",
    ]


def test_publish_errors_are_one_line_without_a_traceback(built: Path) -> None:
    """No user name, and an index that does not answer: exit 1 with a sentence, no traceback."""
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "TWINE_PASSWORD": SECRET}
    anonymous = _release(
        ROOT, "publish", "--index", "http://127.0.0.1:9/", "--out-dir", str(built), env=env
    )
    assert anonymous.returncode == 1
    assert "give --username or set TWINE_USERNAME" in anonymous.stderr
    closed = f"http://127.0.0.1:{free_port()}/"
    refused = _release(
        ROOT, "publish", "--index", closed, "--username", "ci", "--out-dir", str(built), env=env
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("release.py publish: ") and "Traceback" not in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr


def test_publish_to_a_public_index_refuses_wheels_without_project_urls(built: Path) -> None:
    """The packages have no [project.urls] yet: a public index is refused before any upload."""
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "TWINE_PASSWORD": SECRET}
    refused = _release(
        ROOT,
        "publish",
        "--index",
        "https://index.invalid/legacy/",  # RFC 2606: never a real upload, even if the gate broke
        "--username",
        "__token__",
        "--out-dir",
        str(built),
        "mlwf-types",
        env=env,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("release.py publish: mlwf_types-0.1.0-py3-none-any.whl: ")
    assert "no [project.urls]" in refused.stderr and "'index.invalid'" in refused.stderr
    assert "Traceback" not in refused.stderr and SECRET not in refused.stdout + refused.stderr


def test_wheels_with_project_urls_may_go_to_a_public_index(built: Path, tmp_path: Path) -> None:
    """The gate reads the wheel's METADATA: with Project-URL lines the same wheel passes it."""
    from release import ReleaseError, _require_public_metadata, project_urls

    original = next((built / "mlwf-types").glob("*.whl"))
    assert project_urls(original) == []
    with pytest.raises(ReleaseError, match=r"no \[project\.urls\]"):
        _require_public_metadata("https://index.invalid/legacy/", [original])
    _require_public_metadata("http://127.0.0.1:8080/", [original])  # throwaway index: allowed
    _require_public_metadata("http://localhost/", [original])
    with_urls = _with_metadata_lines(
        original, tmp_path / "urls" / original.name, "Project-URL: Source, https://example.org/mlwf"
    )
    assert project_urls(with_urls) == ["Source, https://example.org/mlwf"]
    _require_public_metadata("https://index.invalid/legacy/", [with_urls])
    empty = _with_metadata_lines(
        original, tmp_path / "empty" / original.name, "Project-URL: Source, "
    )
    assert project_urls(empty) == []  # an entry without an address links nowhere
    broken = tmp_path / "broken" / original.name
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReleaseError, match="cannot read its METADATA"):
        project_urls(broken)


def _with_metadata_lines(wheel: Path, target: Path, *lines: str) -> Path:
    """A copy of `wheel` at `target` with `lines` added to its METADATA headers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith(".dist-info/METADATA"):
                head, _, body = data.decode().partition("\n\n")
                data = (head + "".join("\n" + line for line in lines) + "\n\n" + body).encode()
            copy.writestr(item, data)
    return target


@pytest.mark.parametrize(
    ("index", "local"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://127.0.0.2/", True),
        ("http://[::1]:8080/", True),
        ("http://[0:0:0:0:0:0:0:1]/", True),
        ("http://LOCALHOST/", True),
        ("http://localhost./", True),
        ("https://upload.pypi.org/legacy/", False),
        ("https://localhost.example.org/", False),
        ("https://10.0.0.1/", False),
    ],
)
def test_which_indexes_are_local(index: str, local: bool) -> None:
    """Loopback addresses and `localhost` are throwaway indexes; every other host is public."""
    from release import is_local_index

    assert is_local_index(index) is local


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        ("localhost:8080", "expected an http(s) upload URL with a host"),
        ("ftp://127.0.0.1/", "expected an http(s) upload URL with a host"),
        ("https:///legacy/", "expected an http(s) upload URL with a host"),
        ("https://upload.pypi.org\\@localhost/", "no user name, password or backslash"),
        ("https://user:secret@localhost/", "no user name, password or backslash"),
    ],
)
def test_index_urls_that_could_mislead_are_refused(index: str, reason: str) -> None:
    """A URL parsers could read as local while the upload goes elsewhere is refused, saying why."""
    from release import ReleaseError, is_local_index

    with pytest.raises(ReleaseError, match=re.escape(reason)):
        is_local_index(index)
