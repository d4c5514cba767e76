"""``[mlwf_constructors] bundle_modules``: one parser, read from the real Airflow configuration."""

from __future__ import annotations

import pytest
from mlwf_constructors import (
    ConstructorDefinitionError,
    configured_bundle_modules,
    parse_bundle_modules,
)


def test_names_are_split_on_commas_and_blanks_ignored() -> None:
    """Spaces around names and empty entries (a trailing comma) are dropped; order is kept."""
    assert parse_bundle_modules(" team_a , pkg.team_b,, ") == ("team_a", "pkg.team_b")
    assert parse_bundle_modules("") == ()
    assert parse_bundle_modules(None) == ()


def test_a_bad_entry_is_named_with_the_option() -> None:
    """An entry that is no module name is refused, naming the option and the entry."""
    with pytest.raises(
        ConstructorDefinitionError, match=r"bundle_modules: 'team-a/x' is not a module name"
    ):
        parse_bundle_modules("ok_module, team-a/x")


def test_configured_modules_come_from_the_airflow_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The option is read from Airflow's configuration (here its environment variable)."""
    monkeypatch.setenv("AIRFLOW__MLWF_CONSTRUCTORS__BUNDLE_MODULES", "sample_constructors, x.y")
    assert configured_bundle_modules() == ("sample_constructors", "x.y")
    monkeypatch.delenv("AIRFLOW__MLWF_CONSTRUCTORS__BUNDLE_MODULES")
    assert configured_bundle_modules() == ()
