"""``[mlwf_auth]`` settings read from a mapping: the inline policy and the owner options."""

from __future__ import annotations

import json

import pytest
from mlwf_auth._errors import AuthConfigError
from mlwf_auth._settings import AuthSettings

POLICY = {"roles": {"admin": ["platform"]}, "rules": [{"groups": ["a"], "dags": ["a_*"], "actions": ["read"]}]}  # fmt: skip
BASE = {"ldap_url": "ldap://127.0.0.1:389", "ldap_user_base": "ou=people,dc=x"}


def read(**options: str) -> AuthSettings:
    values = {**BASE, **options}
    return AuthSettings.read(values.get)


def test_an_inline_policy_is_read_like_a_file() -> None:
    """``policy`` holds the JSON itself (what mlwf-instance writes): its roles and rules apply."""
    settings = read(policy=json.dumps(POLICY))
    assert settings.policy.role({"platform"}) == "admin"
    assert settings.owners == "all" and settings.owners_ttl == 10.0


def test_inline_policy_errors_name_the_option_and_field() -> None:
    """A wrong inline policy names ``[mlwf_auth] policy`` and the field; both forms at once are refused."""
    bad = {"rules": [{"groups": ["a"], "dags": ["*"], "actions": ["launch"]}]}
    with pytest.raises(AuthConfigError, match=r"^\[mlwf_auth\] policy: rules\.0\.actions\.0: "):
        read(policy=json.dumps(bad))
    with pytest.raises(AuthConfigError, match=r"^\[mlwf_auth\] policy: not JSON"):
        read(policy="{")
    with pytest.raises(AuthConfigError, match="either policy or policy_file"):
        read(policy=json.dumps(POLICY), policy_file="/etc/policy.json")
    with pytest.raises(AuthConfigError, match=r"^\[mlwf_auth\] policy_file: not set"):
        read()


def test_owner_options_are_checked() -> None:
    """``owners_ttl`` must be a number of seconds; ``owners`` is kept for the manager to load."""
    chosen = read(policy="{}", owners="none", owners_ttl="0")
    assert (chosen.owners, chosen.owners_ttl) == ("none", 0)
    assert read(policy="{}", owners=" constructors ").owners == "constructors"
    with pytest.raises(AuthConfigError, match=r"\[mlwf_auth\] owners_ttl: not a number"):
        read(policy="{}", owners_ttl="soon")
