"""`mlwf instance schema` and `mlwf instance validate`: summaries, every error, exit codes, no secrets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance._cli import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "instances"
SECRET = "s3cret-Vb7"


def mlwf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `mlwf` command (the console script of this environment)."""
    command = shutil.which("mlwf", path=str(Path(sys.executable).parent)) or "mlwf"
    return subprocess.run(
        [command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_the_mlwf_command_validates_every_example_spec() -> None:
    """Issue 11: the real `mlwf instance validate` accepts every example spec, one summary line each."""
    specs = sorted(EXAMPLES.glob("*.json"))
    result = mlwf("instance", "validate", *map(str, specs))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{EXAMPLES / 'laptop.json'}: instance 'laptop' (sqlite, local executor)",
        f"{EXAMPLES / 'team-ldap.json'}: instance 'vision' (postgresql, local executor)",
        f"{EXAMPLES / 'team-mariadb.json'}: instance 'fraud' (mysql, celery: 2 workers, "
        "database broker)",
        f"{EXAMPLES / 'team-postgres.json'}: instance 'recsys' (postgresql, celery: 2 workers, "
        "database broker)",
        f"{EXAMPLES / 'team-redis.json'}: instance 'search' (postgresql, celery: 2 workers, "
        "redis broker)",
    ]


def test_the_mlwf_command_lists_every_error_of_every_bad_spec(tmp_path: Path) -> None:
    """Issue 11: bad specs exit 1 with each error as `path: message`, good ones still summarized."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "X", "celery": {"wokers": 2}}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    good = tmp_path / "good.json"
    good.write_text('{"name": "good"}')
    result = mlwf("instance", "validate", str(bad), str(broken), str(good))
    assert result.returncode == 1
    assert result.stdout == f"{good}: instance 'good' (sqlite, local executor)\n"
    assert result.stderr.splitlines() == [
        f"{bad}: 2 errors",
        "  name: lowercase letters, digits and dashes, 2 to 40 characters, starting with a "
        "letter and not ending with a dash",
        "  celery.wokers: unknown key (did you mean 'workers'?)",
        f"{broken}: 1 error",
        "  (top level): not valid JSON (line 1 column 2: Expecting property name enclosed in "
        "double quotes)",
        "2 of 3 specs invalid",
    ]
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: `mlwf instance validate` without a spec is a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as caught:
        main(["instance", "validate"])
    assert caught.value.code == 2
    assert "the following arguments are required: SPEC" in capsys.readouterr().err


def test_a_missing_file_is_an_invalid_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: a spec file that does not exist is reported by name with exit status 1."""
    assert main(["instance", "validate", str(tmp_path / "nope.json")]) == 1
    assert (
        f"{tmp_path / 'nope.json'}: 1 error\n  (top level): cannot read the file: No such file"
        in (capsys.readouterr().err)
    )


def test_resolve_secrets_checks_env_files_and_keytab_without_printing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: --resolve-secrets reads every secret, reports missing ones by source, never a value."""
    (tmp_path / "ldap-pw").write_text(SECRET)
    spec = tmp_path / "team.json"
    spec.write_text(
        json.dumps(
            {
                "name": "team",
                "database": {"url": "postgresql://u@h/d", "password": {"env": "MLWF_T_DB_PW"}},
                "executor": "celery",
                "celery": {"broker": "redis://r/0", "broker_password": {"env": "MLWF_T_REDIS"}},
                "kerberos": {"principal": "airflow/h@R", "keytab": {"file": "airflow.keytab"}},
                "groups": {"admin": ["platform"]},
                "ldap": {
                    "url": "ldaps://l",
                    "user_base": "ou=p",
                    "group_base": "ou=g",
                    "bind_dn": "cn=a",
                    "bind_password": {"file": "ldap-pw"},
                },
            }
        )
    )
    monkeypatch.setenv("MLWF_T_DB_PW", SECRET)
    monkeypatch.delenv("MLWF_T_REDIS", raising=False)
    assert main(["instance", "validate", "--resolve-secrets", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[1:] == [
        "  celery.broker_password: environment variable MLWF_T_REDIS is not set",
        f"  kerberos.keytab: keytab {tmp_path / 'airflow.keytab'} is not a readable file",
        "1 of 1 spec invalid",
    ]
    (tmp_path / "airflow.keytab").write_bytes(b"\x05\x02binary")
    monkeypatch.setenv("MLWF_T_REDIS", SECRET)
    assert main(["instance", "validate", "--resolve-secrets", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert "secrets readable: database.password from environment variable MLWF_T_DB_PW" in out
    assert f"ldap.bind_password from file {tmp_path / 'ldap-pw'}" in out
    assert SECRET not in out + err


def test_schema_prints_the_json_schema_or_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: `mlwf instance schema` prints the JSON schema; --out writes it to a file."""
    assert main(["instance", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == "mlwf instance spec" and "name" in printed["properties"]
    out = tmp_path / "schema.json"
    assert main(["instance", "schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == printed
    assert main(["instance", "schema", "--out", str(tmp_path / "no" / "dir.json")]) == 1
    assert "cannot write" in capsys.readouterr().err
