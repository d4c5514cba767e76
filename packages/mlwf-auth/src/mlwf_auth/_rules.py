"""Who may do what on which DAG: instance roles from groups, and per-DAG rules.

An :class:`AccessPolicy` holds the instance's roles (the groups of its ``admin``, ``users`` and
``viewers``) and a list of :class:`DagRule`: groups → DAGs (by id glob, tag or bundle) →
actions. A user's groups decide everything: admins may do anything on every DAG; anyone else
may do on a DAG exactly what the rules naming one of their groups and matching the DAG grant.
Roles grant no DAG by themselves: an instance gives its users the whole instance with one rule
(``{"groups": ["team"], "dags": ["*"], "actions": ["read", "run"]}``).

Actions on a DAG (``run``, ``edit`` and ``delete`` each imply ``read``):

========  ==================================================================================
read      see the DAG and everything of it: runs, task instances, logs, code, XComs, …
run       trigger, clear, mark and delete runs and task instances; set XComs; answer HITL
edit      change the DAG itself (pause, unpause) and its other entities
delete    delete the DAG and its history
========  ==================================================================================

Checks are pure and cheap: a policy compiles, per set of groups, one matcher per action (a
single regular expression over DAG ids plus sets of tags and bundles), so filtering N DAGs is
one pass of N matches, not N policy evaluations.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: The actions a rule may grant on a DAG.
Action = Literal["read", "run", "edit", "delete"]
ACTIONS: tuple[Action, ...] = ("read", "run", "edit", "delete")

#: Bounds on what a configuration may hold (a policy is read on every request).
MAX_RULES = 1000
MAX_ITEMS = 200
MAX_SELECTORS = 10_000
_NAME = Annotated[str, StringConstraints(min_length=1, max_length=256)]
#: Group names and DAG-id globs: no control characters.
_TEXT = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]

#: Which action an Airflow request needs: (HTTP method, DAG access entity) → action. The
#: entity is ``None`` for the DAG itself, else the name of Airflow's ``DagAccessEntity``.
_RUN_ENTITIES = frozenset({"RUN", "TASK_INSTANCE", "XCOM", "HITL_DETAIL"})


def required_action(method: str, access_entity: str | None = None) -> Action:
    """Return the action a request needs: ``method`` (GET, POST, PUT, PATCH, DELETE) on ``access_entity``."""
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    if access_entity in _RUN_ENTITIES:
        return "run"
    if access_entity is None and method == "DELETE":
        return "delete"
    return "edit"


@dataclass(frozen=True)
class DagFacts:
    """What a rule can match of a DAG: its id, tags and bundle."""

    dag_id: str
    tags: frozenset[str] = frozenset()
    bundle: str | None = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class DagRule(_Model):
    """Members of ``groups`` may do ``actions`` on the DAGs matching ``dags``, ``tags`` or ``bundles``."""

    groups: list[_TEXT] = Field(min_length=1, max_length=MAX_ITEMS, description="group names")
    dags: list[_TEXT] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="DAG id globs (fnmatch: *, ?, [seq]; case-sensitive)",
    )
    tags: list[_NAME] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="DAG tags (any one matches)"
    )
    bundles: list[_NAME] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="DAG bundle names"
    )
    actions: list[Action] = Field(
        min_length=1, max_length=len(ACTIONS), description="read, run, edit, delete"
    )

    @model_validator(mode="after")
    def _check_selects(self) -> DagRule:
        if not (self.dags or self.tags or self.bundles):
            raise ValueError("a rule selects DAGs by at least one of dags, tags or bundles")
        return self


class Roles(_Model):
    """The instance's roles: the groups of each."""

    admin: list[_TEXT] = Field(default_factory=list, max_length=MAX_ITEMS)
    users: list[_TEXT] = Field(default_factory=list, max_length=MAX_ITEMS)
    viewers: list[_TEXT] = Field(default_factory=list, max_length=MAX_ITEMS)


Role = Literal["admin", "user", "viewer"]


class PolicyModel(_Model):
    """The configuration of an :class:`AccessPolicy` (``roles`` and ``rules``)."""

    roles: Roles = Field(default_factory=Roles)
    rules: list[DagRule] = Field(default_factory=list, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _check_size(self) -> PolicyModel:
        selectors = sum(len(r.dags) + len(r.tags) + len(r.bundles) for r in self.rules)
        if selectors > MAX_SELECTORS:
            raise ValueError(
                f"the rules hold {selectors} DAG ids, tags and bundles; at most {MAX_SELECTORS}"
            )
        return self


@dataclass(frozen=True)
class _Matcher:
    """DAGs that one set of rules selects: an id pattern, tags, bundles."""

    ids: re.Pattern[str] | None
    tags: frozenset[str]
    bundles: frozenset[str]

    def matches(self, dag: DagFacts) -> bool:
        if self.ids is not None and self.ids.fullmatch(dag.dag_id):
            return True
        if dag.bundle is not None and dag.bundle in self.bundles:
            return True
        return not self.tags.isdisjoint(dag.tags)


_NOTHING = _Matcher(None, frozenset(), frozenset())


def _compile(rules: Iterable[DagRule]) -> _Matcher:
    globs: set[str] = set()
    tags: set[str] = set()
    bundles: set[str] = set()
    for rule in rules:
        globs.update(rule.dags)
        tags.update(rule.tags)
        bundles.update(rule.bundles)
    if not (globs or tags or bundles):
        return _NOTHING
    ids = None
    if globs:
        # fnmatch.translate gives "(?s:…)\Z"; fullmatch needs neither anchor.
        ids = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in sorted(globs)))
    return _Matcher(ids, frozenset(tags), frozenset(bundles))


@dataclass
class AccessPolicy:
    """Roles and DAG rules, compiled; thread-safe (matchers are cached per set of groups)."""

    model: PolicyModel
    _cache: dict[frozenset[str], Mapping[Action, _Matcher]] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    #: Distinct group sets whose matchers are kept; beyond it the cache starts over.
    CACHE_SIZE = 4096

    @classmethod
    def from_config(cls, config: object) -> AccessPolicy:
        """Validate ``config`` (a mapping, as read from JSON) into a policy.

        Raises ``pydantic.ValidationError`` naming each wrong field (``rules.2.actions.0``).
        """
        return cls(PolicyModel.model_validate(config))

    def role(self, groups: Iterable[str]) -> Role | None:
        """Return the highest instance role of a user in ``groups``, or None."""
        mine = set(groups)
        roles = self.model.roles
        if not mine.isdisjoint(roles.admin):
            return "admin"
        if not mine.isdisjoint(roles.users):
            return "user"
        if not mine.isdisjoint(roles.viewers):
            return "viewer"
        return None

    def _matchers(self, groups: frozenset[str]) -> Mapping[Action, _Matcher]:
        with self._lock:
            cached = self._cache.get(groups)
        if cached is not None:
            return cached
        mine = [rule for rule in self.model.rules if not groups.isdisjoint(rule.groups)]
        matchers = {
            action: _compile(rule for rule in mine if action in rule.actions or action == "read")
            for action in ACTIONS
        }
        with self._lock:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[groups] = matchers
        return matchers

    def is_allowed(self, groups: Iterable[str], action: Action, dag: DagFacts) -> bool:
        """Return whether a user in ``groups`` may do ``action`` on ``dag``."""
        mine = frozenset(groups)
        if self.role(mine) == "admin":
            return True
        return self._matchers(mine)[action].matches(dag)

    def filter_dags(
        self, groups: Iterable[str], action: Action, dags: Iterable[DagFacts]
    ) -> set[str]:
        """Return the ids of the ``dags`` on which a user in ``groups`` may do ``action``: one pass."""
        mine = frozenset(groups)
        if self.role(mine) == "admin":
            return {dag.dag_id for dag in dags}
        matcher = self._matchers(mine)[action]
        if matcher is _NOTHING:
            return set()
        return {dag.dag_id for dag in dags if matcher.matches(dag)}

    @property
    def named_groups(self) -> frozenset[str]:
        """Every group the policy names (roles and rules): the only groups that matter here."""
        roles = self.model.roles
        names = {*roles.admin, *roles.users, *roles.viewers}
        for rule in self.model.rules:
            names.update(rule.groups)
        return frozenset(names)

    def grants_any(self, groups: Iterable[str], action: Action) -> bool:
        """Return whether ``groups`` may do ``action`` on some DAG (admins, or a rule for them)."""
        mine = frozenset(groups)
        if self.role(mine) == "admin":
            return True
        return self._matchers(mine)[action] is not _NOTHING


def glob_escape(text: str) -> str:
    """Return a glob that matches exactly ``text`` (``*``, ``?`` and ``[`` escaped)."""
    return re.sub(r"([*?\[])", r"[\1]", text)
