"""The ``mlwf`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlwf_instance import EmbeddedInstance, InstanceHome
from mlwf_instance._cli import build_parser, default_dags_folder, main


def test_up_parses_its_options() -> None:
    """``mlwf up`` accepts --home, --port, --dags-folder and --timeout."""
    args = build_parser().parse_args(
        ["up", "--home", "h", "--port", "9000", "--dags-folder", "d", "--timeout", "5"]
    )
    assert (args.command, args.home, args.port, args.dags_folder, args.timeout) == (
        "up",
        "h",
        9000,
        "d",
        5.0,
    )


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """``mlwf`` without a subcommand exits with a usage error."""
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_default_dags_folder_prefers_examples(tmp_path: Path) -> None:
    """The default DAGs folder is ./examples/dags when it exists, else <home>/dags."""
    home = tmp_path / ".mlwf"
    assert default_dags_folder(tmp_path, home) == home / "dags"
    (tmp_path / "examples" / "dags").mkdir(parents=True)
    assert default_dags_folder(tmp_path, home) == tmp_path / "examples" / "dags"


def test_missing_dags_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mlwf up --dags-folder`` naming a missing directory exits 2 and names it."""
    missing = tmp_path / "nope"
    assert main(["up", "--home", str(tmp_path / "h"), "--dags-folder", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[3]
EXAMPLE_DAGS = REPO / "examples" / "dags"


def _mlwf(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``mlwf`` command in ``cwd`` with no Airflow variables inherited (unless ``env``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, "-m", "mlwf_instance._cli", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def _up_home(root: Path) -> InstanceHome:
    """Lay out an ``mlwf up`` home at ``root`` with its airflow.cfg, as ``mlwf up`` writes it."""
    instance = EmbeddedInstance(
        root,
        dags_folder=EXAMPLE_DAGS,
        extra_config={"mlwf_constructors": {"bundle_modules": "example_constructors"}},
    )
    instance.home.create()
    instance.config.write_airflow_cfg(instance.home.load_or_create_secrets())
    return instance.home


def test_constructors_refuses_an_mlwf_up_home_as_airflow_home(tmp_path: Path) -> None:
    """Issue 10 item 17: --airflow-home naming an mlwf up home exits 2 naming the missing airflow.cfg, suggests --home and writes nothing."""
    home = _up_home(tmp_path / ".mlwf")
    result = _mlwf(tmp_path, "constructors", "--airflow-home", ".mlwf", "list")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{home.root / 'airflow.cfg'}" in result.stderr
    assert "use --home .mlwf" in result.stderr
    assert not (home.root / "airflow.cfg").exists()
    assert result.stdout == ""


def test_constructors_refuses_a_place_without_configuration(tmp_path: Path) -> None:
    """Issue 10 item 17: with no mlwf up home in the current directory and no AIRFLOW_HOME, the command exits 2 naming what it looked for."""
    result = _mlwf(tmp_path, "constructors", "list")
    assert result.returncode == 2
    assert str(tmp_path / ".mlwf" / "airflow" / "airflow.cfg") in result.stderr
    assert "--home" in result.stderr and "--airflow-home" in result.stderr
    unset = _mlwf(tmp_path, "constructors", "list", env={"AIRFLOW_HOME": str(tmp_path / "af")})
    assert unset.returncode == 2
    assert f"{tmp_path / 'af' / 'airflow.cfg'} does not exist" in unset.stderr
    assert not (tmp_path / "af").exists()
    airflow_home = _up_home(tmp_path / "other").airflow_home
    swapped = _mlwf(tmp_path, "constructors", "--home", str(airflow_home), "list")
    assert swapped.returncode == 2
    assert f"use --airflow-home {airflow_home}" in swapped.stderr


def test_constructors_finds_the_mlwf_up_home_of_the_current_directory(tmp_path: Path) -> None:
    """Issue 10 item 17: without options, `mlwf constructors list` works on ./.mlwf (as `mlwf up` does), and --home names it explicitly."""
    home = _up_home(tmp_path / ".mlwf")
    result = _mlwf(tmp_path, "constructors", "list")
    assert result.returncode == 0, result.stderr[-2000:]
    assert str(home.airflow_cfg) in result.stderr
    assert "train_evaluate" in result.stdout  # registered only by this home's configuration
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    explicit = _mlwf(elsewhere, "constructors", "--home", str(home.root), "list")
    assert explicit.returncode == 0, explicit.stderr[-2000:]
    assert "train_evaluate" in explicit.stdout


def test_output_to_a_closed_pipe_never_raises() -> None:
    """Issue 10 item 15: mlwf up's output to a pipe whose reader died (tee after Ctrl-C) is dropped without an error, now and later."""
    from mlwf_instance._cli import _write

    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w")
    try:
        _write(stream, "SIGINT received, stopping…\n")  # EPIPE: BrokenPipeError before the fix
        _write(stream, "stopped\n")
        stream.flush()
    finally:
        stream.close()
