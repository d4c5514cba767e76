"""The ``mlwf`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
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
