"""AccessPolicy: roles and per-DAG rules decide every action on every DAG, in one pass for many DAGs."""

from __future__ import annotations

import random

import pytest
from mlwf_auth import AccessPolicy, DagFacts, glob_escape, required_action
from pydantic import ValidationError

POLICY = {
    "roles": {"admin": ["platform"], "users": ["recsys", "fraud"], "viewers": ["analytics"]},
    "rules": [
        {"groups": ["recsys"], "dags": ["recsys_*"], "actions": ["read", "run"]},
        {"groups": ["recsys-leads"], "dags": ["recsys_*"], "actions": ["edit", "delete"]},
        {"groups": ["fraud"], "tags": ["fraud"], "actions": ["run"]},
        {"groups": ["analytics"], "bundles": ["reports"], "actions": ["read"]},
        {"groups": ["recsys"], "dags": ["shared_[ab]", "exact?"], "actions": ["read"]},
    ],
}

DAGS = {
    "recsys_train": DagFacts("recsys_train", frozenset({"ml"}), "dags-folder"),
    "fraud_score": DagFacts("fraud_score", frozenset({"fraud", "ml"}), "dags-folder"),
    "weekly_report": DagFacts("weekly_report", frozenset(), "reports"),
    "shared_a": DagFacts("shared_a"),
    "shared_c": DagFacts("shared_c"),
    "exact1": DagFacts("exact1"),
    "exact12": DagFacts("exact12"),
}


def allowed(policy: AccessPolicy, groups: set[str], action: str) -> set[str]:
    """Return the DAGs of DAGS on which ``groups`` may do ``action``, checked one by one."""
    return {d for d, facts in DAGS.items() if policy.is_allowed(groups, action, facts)}  # type: ignore[arg-type]


def test_rules_grant_exactly_their_actions_on_their_dags() -> None:
    """Issue 13: group → DAG ids (glob), tags or bundles → actions; other DAGs and actions are refused."""
    policy = AccessPolicy.from_config(POLICY)
    assert allowed(policy, {"recsys"}, "read") == {"recsys_train", "shared_a", "exact1"}
    assert allowed(policy, {"recsys"}, "run") == {"recsys_train"}
    assert allowed(policy, {"recsys"}, "edit") == set()
    assert allowed(policy, {"recsys", "recsys-leads"}, "delete") == {"recsys_train"}
    # run implies read: the fraud group reads what it may run, by tag.
    assert allowed(policy, {"fraud"}, "read") == {"fraud_score"}
    assert allowed(policy, {"fraud"}, "run") == {"fraud_score"}
    assert allowed(policy, {"analytics"}, "read") == {"weekly_report"}
    assert allowed(policy, {"analytics"}, "run") == set()
    assert allowed(policy, {"nobody"}, "read") == set()
    assert allowed(policy, set(), "read") == set()


def test_admins_may_do_everything_and_roles_alone_grant_no_dag() -> None:
    """Issue 13: an admin group may do every action on every DAG; users and viewers only what rules give."""
    policy = AccessPolicy.from_config(POLICY)
    for action in ("read", "run", "edit", "delete"):
        assert allowed(policy, {"platform"}, action) == set(DAGS)
    assert policy.role({"fraud", "analytics"}) == "user"
    assert policy.role({"analytics"}) == "viewer"
    assert policy.role({"platform", "analytics"}) == "admin"
    assert policy.role({"x"}) is None
    only_roles = AccessPolicy.from_config({"roles": POLICY["roles"]})
    assert allowed(only_roles, {"recsys"}, "read") == set()


def test_filter_in_one_pass_equals_checking_each_dag() -> None:
    """Issue 13: filter_dags gives exactly the DAGs is_allowed allows, for random group sets and actions."""
    policy = AccessPolicy.from_config(POLICY)
    groups = ["platform", "recsys", "recsys-leads", "fraud", "analytics", "x"]
    rng = random.Random(13)
    for _ in range(200):
        mine = set(rng.sample(groups, rng.randint(0, 3)))
        action = rng.choice(["read", "run", "edit", "delete"])
        assert policy.filter_dags(mine, action, DAGS.values()) == allowed(policy, mine, action)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "entity", "action"),
    [
        ("GET", None, "read"),
        ("GET", "TASK_LOGS", "read"),
        ("PUT", None, "edit"),
        ("PATCH", None, "edit"),
        ("DELETE", None, "delete"),
        ("POST", "RUN", "run"),
        ("DELETE", "RUN", "run"),
        ("PUT", "TASK_INSTANCE", "run"),
        ("POST", "XCOM", "run"),
        ("PUT", "HITL_DETAIL", "run"),
        ("PUT", "CODE", "edit"),
        ("post", "TASK", "edit"),
    ],
)
def test_each_request_needs_one_action(method: str, entity: str | None, action: str) -> None:
    """Issue 13: Airflow's (method, DAG access entity) maps to read, run, edit or delete."""
    assert required_action(method, entity) == action


def test_every_error_names_its_field() -> None:
    """Issue 13: an unknown action, a rule selecting nothing, an unknown key each name their path."""
    bad = {
        "roles": {"admins": ["x"]},
        "rules": [
            {"groups": ["a"], "dags": ["*"], "actions": ["read", "trigger"]},
            {"groups": ["a"], "actions": ["read"]},
            {"groups": [], "dags": ["x"], "actions": ["read"]},
            {"groups": ["a"], "dags": ["bad\nname"], "actions": ["read"]},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        AccessPolicy.from_config(bad)
    where = {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}
    assert where == {
        "roles.admins",
        "rules.0.actions.1",
        "rules.1",
        "rules.2.groups",
        "rules.3.dags.0",
    }
    assert "a rule selects DAGs by at least one of dags, tags or bundles" in str(caught.value)


def test_sizes_are_bounded() -> None:
    """Issue 13: more than 10,000 DAG ids, tags and bundles in all the rules is refused."""
    rules = [
        {"groups": ["g"], "dags": [f"d{i}_{j}" for j in range(200)], "actions": ["read"]}
        for i in range(51)
    ]
    with pytest.raises(ValidationError, match="at most 10000"):
        AccessPolicy.from_config({"rules": rules})


def test_an_escaped_glob_matches_only_its_own_text() -> None:
    """glob_escape makes a rule for one literal DAG id, glob characters and all."""
    rule = {"groups": ["recsys"], "dags": [glob_escape("inst[1]*")], "actions": ["delete"]}
    policy = AccessPolicy.from_config({"rules": [rule]})
    assert policy.is_allowed({"recsys"}, "delete", DagFacts("inst[1]*"))
    assert not policy.is_allowed({"recsys"}, "read", DagFacts("inst1x"))
    assert glob_escape("a*b?[c]") == "a[*]b[?][[]c]"
