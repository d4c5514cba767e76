"""``mlwf instance up|status|down``: spec errors, a home with nothing running, and stopping a live owner."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlwf_instance._cli import main
from mlwf_instance._pidfile import read_owner
from mlwf_testsupport import free_port

#: Holds the home's pid file like `mlwf instance up` does, until SIGTERM.
OWNER = """
import signal, sys, time
from pathlib import Path
from mlwf_instance._pidfile import PidFile
home = Path(sys.argv[1])
pid_file = PidFile(home / "mlwf-up.pid", home)
pid_file.acquire()
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print("holding", flush=True)
while not stop:
    time.sleep(0.05)
pid_file.release()
"""


def _hold(home: Path) -> subprocess.Popen[str]:
    """Start a process that holds ``home``'s pid file like `mlwf instance up`, until SIGTERM."""
    home.mkdir()
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None and owner.stdout.readline() == "holding\n"
    return owner


def _spec_file(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "team.json"
    document = {
        "name": "team-a",
        "dag_folders": ["dags"],
        "home": "home",
        "api": {"port": free_port()},
        **fields,
    }
    path.write_text(json.dumps(document))
    return path


def test_status_and_down_of_a_stopped_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: status of a home nobody runs exits 3 saying "not running"; down is then a no-op exiting 0."""
    spec = _spec_file(tmp_path)
    assert main(["instance", "status", str(spec)]) == 3
    assert f"team-a: not running (home {tmp_path / 'home'})" in capsys.readouterr().out
    assert main(["instance", "down", str(spec)]) == 0
    assert "not running" in capsys.readouterr().out


def test_bad_spec_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: up, status and down on an invalid spec exit 2 with the JSON path and no traceback."""
    spec = _spec_file(tmp_path, executor="celery")  # celery needs a server database
    for action in ("up", "status", "down"):
        assert main(["instance", action, str(spec)]) == 2
        err = capsys.readouterr().err
        assert f"mlwf instance {action}: error:" in err and "Traceback" not in err


def test_missing_password_variable_is_named_by_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: up with a database password from an unset environment variable exits 2 naming the variable."""
    monkeypatch.delenv("TEAM_A_PW", raising=False)
    spec = _spec_file(
        tmp_path,
        database={"url": "postgresql://team@127.0.0.1/a", "password": {"env": "TEAM_A_PW"}},
    )
    assert main(["instance", "up", str(spec)]) == 2
    assert "TEAM_A_PW" in capsys.readouterr().err
    assert not (tmp_path / "home" / "mlwf-up.pid").exists()


def test_down_signals_the_owner_and_waits_until_it_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: status of a home held by a live process reports it running (degraded without an API); down SIGTERMs it and returns once the pid file is released."""
    spec = _spec_file(tmp_path)
    home = tmp_path / "home"
    owner = _hold(home)
    try:
        assert read_owner(home / "mlwf-up.pid").pid == owner.pid
        assert main(["instance", "status", str(spec)]) == 1
        out = capsys.readouterr().out
        assert f"running, pid {owner.pid}" in out and "UNHEALTHY" in out
        started = time.monotonic()
        assert main(["instance", "down", str(spec), "--timeout", "30"]) == 0
        assert owner.wait(timeout=5) == 0
        assert time.monotonic() - started < 30
        assert "team-a: stopped" in capsys.readouterr().out
        assert not read_owner(home / "mlwf-up.pid").running
    finally:
        owner.kill()
        owner.wait()


def test_down_refuses_a_pid_that_started_after_the_file_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pid file whose recorded start time is not its lock holder's: down signals nothing, exits 1."""
    spec = _spec_file(tmp_path)
    home = tmp_path / "home"
    owner = _hold(home)
    try:
        pid_path = home / "mlwf-up.pid"
        content = json.loads(pid_path.read_text())
        assert content["create_time"] > 0
        pid_path.write_text(json.dumps({**content, "create_time": content["create_time"] - 3600}))
        assert main(["instance", "down", str(spec), "--timeout", "5"]) == 1
        assert "started at another time" in capsys.readouterr().err
        assert owner.poll() is None
    finally:
        owner.kill()
        owner.wait()


def test_up_notes_the_spec_fields_it_does_not_apply_here() -> None:
    """Groups without LDAP, the instance's Kerberos ticket and a metrics port are not applied locally: up says so."""
    from mlwf_instance._cli_run import not_applied_here
    from mlwf_instance._spec import parse_spec

    assert not_applied_here(parse_spec({"name": "ab"})) == []
    notes = not_applied_here(
        parse_spec(
            {
                "name": "ab",
                "kerberos": {"principal": "airflow/h@EX.COM", "keytab": "/k.keytab"},
                "groups": {"viewers": ["everyone"]},
                "metrics": {"port": 9102},
            }
        )
    )
    assert len(notes) == 3
    assert notes[0].startswith("groups: applied only with ldap")
    assert notes[1].startswith("kerberos.principal, kerberos.keytab: the instance's own ticket")
    assert notes[2].startswith("metrics.port: used by the helm and kubernetes targets only")
    with_ldap = {
        "name": "ab",
        "groups": {"admin": ["platform"]},
        "ldap": {"url": "ldap://127.0.0.1", "user_base": "ou=p", "group_base": "ou=g"},
    }
    assert not_applied_here(parse_spec(with_ldap)) == []
    disabled = parse_spec({"name": "ab", "metrics": {"enabled": False, "port": 9102}})
    assert not_applied_here(disabled) == []
