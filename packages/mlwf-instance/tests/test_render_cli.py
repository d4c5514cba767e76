"""Issue 11: `mlwf instance render` on the command line: safe output folder, no secret anywhere."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from mlwf_instance._cli import main
from render_support import KNOWN_SECRETS, SPECS


def _write_spec(tmp_path: Path, document: dict[str, object]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    return path


def _secret_laden_spec(tmp_path: Path, style: str) -> Path:
    """Write a spec holding secrets with known values: as references, or inside the URLs."""
    if style == "references":
        database: dict[str, object] = {
            "url": "postgresql://owner@db.example.com/airflow",
            "password": KNOWN_SECRETS["literal"],
        }
        celery: dict[str, object] = {
            "broker": "redis://default@redis.example.com:6379/0",
            "broker_password": {"env": "MLWF_TEST_BROKER_PW"},
        }
    else:  # the spec allows a password in the URL itself (one place only)
        database = {
            "url": f"postgresql://owner:{KNOWN_SECRETS['inline_db']}@db.example.com/airflow"
        }
        celery = {"broker": f"redis://:{KNOWN_SECRETS['inline_broker']}@redis.example.com:6379/0"}
    document = {
        "name": "secretive",
        "service_account": "secretive-sa",
        "database": database,
        "executor": "celery",
        "celery": celery,
        "kerberos": {
            "principal": "svc@EXAMPLE.COM",
            "keytab": {"file": KNOWN_SECRETS["keytab_path"]},
        },
        "groups": {"admin": ["platform"]},
        "ldap": {
            "url": "ldaps://ldap.example.com",
            "user_base": "ou=people,dc=example,dc=com",
            "group_base": "ou=groups,dc=example,dc=com",
            "bind_dn": "cn=svc,dc=example,dc=com",
            "bind_password": KNOWN_SECRETS["ldap"],
        },
    }
    return _write_spec(tmp_path, document)


@pytest.mark.parametrize("target", ["local", "helm", "kubernetes"])
@pytest.mark.parametrize("style", ["references", "inline"])
def test_no_secret_value_reaches_a_rendered_file_or_the_terminal(
    target: str,
    style: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11: literal, env, file and inline-URL secrets appear in no rendered file and no output."""
    monkeypatch.setenv("MLWF_TEST_BROKER_PW", KNOWN_SECRETS["env"])
    spec = _secret_laden_spec(tmp_path, style)
    out = tmp_path / "out"
    assert main(["instance", "render", str(spec), "--target", target, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for value in KNOWN_SECRETS.values():
        assert value not in printed.out + printed.err
        for path in files:
            assert value not in path.read_text(), f"{value} in {path}"
    for path in files:
        assert str(path.relative_to(out)) in printed.out  # it says what it wrote


def test_a_non_empty_out_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: render refuses a non-empty --out (nothing touched) and replaces files with --force."""
    spec = _write_spec(tmp_path, SPECS["team-mariadb"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "values.yaml").write_text("mine\n")
    (out / "notes.txt").write_text("keep\n")
    argv = ["instance", "render", str(spec), "--target", "helm", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: the folder is not empty" in err and "--force" in err
    assert (out / "values.yaml").read_text() == "mine\n"
    assert main([*argv, "--force"]) == 0
    assert (out / "values.yaml").read_text().startswith("# Values of mlwf instance 'fraud'")
    assert (out / "notes.txt").read_text() == "keep\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.render-")]


def test_local_files_are_private(tmp_path: Path) -> None:
    """Issue 11: the local airflow.cfg and environment file are written mode 0600."""
    spec = _write_spec(tmp_path, {**SPECS["team-mariadb"], "home": "home"})
    out = tmp_path / "out"
    assert main(["instance", "render", str(spec), "--target", "local", "--out", str(out)]) == 0
    for name in ("airflow.cfg", "instance.env"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "processes.json").stat().st_mode) == 0o644


def test_a_bad_spec_gets_its_json_path_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: an invalid spec exits 2 naming the JSON path, writes nothing, prints no traceback."""
    spec = _write_spec(tmp_path, {"name": "x1", "celery": {"wokers": 2}})
    out = tmp_path / "out"
    assert main(["instance", "render", str(spec), "--target", "kubernetes", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "celery.wokers" in err and "Traceback" not in err
    assert not out.exists()


def test_a_spec_the_target_cannot_run_is_refused_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: a sqlite spec for kubernetes exits 2 naming database.url and writes nothing."""
    spec = _write_spec(tmp_path, {"name": "laptop"})
    out = tmp_path / "out"
    assert main(["instance", "render", str(spec), "--target", "kubernetes", "--out", str(out)]) == 2
    assert 'database.url: "sqlite" cannot run on a cluster' in capsys.readouterr().err
    assert not out.exists()
