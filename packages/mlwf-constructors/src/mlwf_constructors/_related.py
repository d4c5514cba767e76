"""What an instance's values amount to before anything is written: its DAG and its related DAGs.

The API authorizes a request on every DAG an instance defines or uses (``DagConstructor.related_dags``);
the service computes them under the instance's lock and hands them to the API's authorization
callback, so what is authorized is exactly what is written: :func:`prepare` validates the values,
builds the DAG once (the constructor may refuse values its parameters accept) and asks for the
related DAGs; :func:`check_defined_free` refuses a defined DAG id that is taken. Exceptions of a constructor's
own code become :class:`ConstructorRefusedError` (a 422), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlwf_constructors._constructor import RelatedDag
from mlwf_constructors._errors import (
    ConstructorNotFoundError,
    ConstructorRefusedError,
    ConstructorsError,
    DagIdTakenError,
)

if TYPE_CHECKING:
    from mlwf_constructors._registry import RegisteredConstructor
    from mlwf_constructors._store import InstanceRecord, InstanceStore

log = logging.getLogger(__name__)


class _Settings(Protocol):
    @property
    def instances_root(self) -> Path: ...

    @property
    def bundle_name(self) -> str: ...


class Constructors(Protocol):
    """What these checks use of :class:`mlwf_constructors._service.Constructors` (which calls them).

    Typed structurally, so that this module does not import the service that imports it.
    """

    @property
    def settings(self) -> _Settings:
        """Where instance files live and the bundle that holds them."""

    store: InstanceStore
    airflow_db: bool

    def constructor(self, reference: str) -> RegisteredConstructor:
        """Return a registered constructor (ConstructorNotFoundError otherwise)."""

    def path(self, instance_id: str) -> Path:
        """Return the path of an instance's generated DAG file."""


@dataclass(frozen=True)
class Prepared:
    """Complete, accepted values of an instance and the DAGs they relate it to."""

    values: dict[str, Any]
    related: tuple[RelatedDag, ...]


def _related_dags(
    registered: RegisteredConstructor, instance_id: str, values: Mapping[str, Any]
) -> tuple[RelatedDag, ...]:
    try:
        related = tuple(registered.cls().related_dags(instance_id, values))
    except ConstructorsError:
        raise
    except Exception as err:
        raise ConstructorRefusedError(registered.reference, err) from None
    for item in related:
        if not isinstance(item, RelatedDag) or not isinstance(item.dag_id, str):
            raise ConstructorRefusedError(
                registered.reference, f"related_dags() returned {item!r}, not a RelatedDag"
            )
    # The instance's own DAG is authorized as the instance, so defining it again changes nothing;
    # but using it (triggering itself, reading its own XComs) is checked like any used DAG.
    return tuple(r for r in related if not (r.role == "defines" and r.dag_id == instance_id))


def prepare(
    svc: Constructors, instance_id: str, constructor: str, values: Mapping[str, Any]
) -> Prepared:
    """Validate ``values``, build the DAG once and return the complete values and related DAGs.

    Raises ConstructorNotFoundError, ParameterValidationError, and ConstructorRefusedError when
    the constructor's ``build_dag`` or ``related_dags`` raises anything but a ConstructorsError.
    """
    registered = svc.constructor(constructor)
    complete = registered.cls.validate(values)
    try:
        registered.cls().build(instance_id, complete)
    except ConstructorsError:
        raise
    except Exception as err:
        # One line, no traceback: the user's values are at fault, not the server.
        log.info("mlwf-constructors: %s refused values of %r: %s", constructor, instance_id, err)
        raise ConstructorRefusedError(registered.reference, err) from None
    return Prepared(complete, _related_dags(registered, instance_id, complete))


def related_of(svc: Constructors, record: InstanceRecord) -> tuple[RelatedDag, ...]:
    """Return the related DAGs of a stored instance (none if its constructor is gone).

    Without its constructor an instance's file cannot define or use any DAG, so there is
    nothing beyond the instance's own DAG to authorize.
    """
    try:
        registered = svc.constructor(record.constructor)
    except ConstructorNotFoundError:
        return ()
    return _related_dags(registered, record.instance_id, record.values)


def defined_ids(related: Sequence[RelatedDag]) -> list[str]:
    """Return the ids of the DAGs in ``related`` that the instance defines."""
    return [r.dag_id for r in related if r.role == "defines"]


def check_defined_free(
    svc: Constructors,
    instance_id: str,
    related: Sequence[RelatedDag],
    stored_instances: Sequence[InstanceRecord] | None = None,
) -> None:
    """Raise DagIdTakenError if a DAG the instance would define is taken, or its own id is.

    Taken means: another stored instance has that id, or Airflow knows a DAG with that id from
    a file other than this instance's; and for the instance's own id: another stored instance
    defines a DAG with that id.
    """
    defined = defined_ids(related)
    # A writer holding an instance's lock passes what its own connection reads (no second one).
    listed = svc.store.list() if stored_instances is None else stored_instances
    stored = {r.instance_id: r for r in listed}
    for dag_id in defined:
        if dag_id in stored:
            raise DagIdTakenError(
                dag_id,
                f"DAG id {dag_id!r}, which instance {instance_id!r} would define, is the id of "
                "another instance",
            )
    for other in stored.values():
        if other.instance_id == instance_id:
            continue
        try:
            theirs = related_of(svc, other)
        except ConstructorsError:
            continue  # a broken stored instance defines nothing Airflow could load
        clash = {r.dag_id for r in theirs if r.role == "defines"} & {instance_id, *defined}
        if clash:
            dag_id = sorted(clash)[0]
            raise DagIdTakenError(
                dag_id, f"DAG id {dag_id!r} is already defined by instance {other.instance_id!r}"
            )
    if not defined or not svc.airflow_db:
        return
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    own_file = str(svc.path(instance_id).relative_to(svc.settings.instances_root))
    with create_session() as session:
        rows = session.execute(
            select(
                DagModel.dag_id, DagModel.bundle_name, DagModel.relative_fileloc, DagModel.is_stale
            ).where(DagModel.dag_id.in_(defined))
        ).all()
    for row in rows:
        if (row.bundle_name, row.relative_fileloc) != (svc.settings.bundle_name, own_file):
            # A stale DAG too: Airflow keeps its runs, XComs and logs, which the instance's
            # owners would then hold. Deleting that DAG (with its history) frees the id.
            # Where it is defined only for those who may read that DAG (see DagIdTakenError).
            raise DagIdTakenError(
                row.dag_id,
                f"DAG id {row.dag_id!r}, which instance {instance_id!r} would define, is already "
                + (
                    "the id of a removed DAG whose history Airflow keeps (delete that DAG first)"
                    if row.is_stale
                    else "used by another DAG"
                ),
                location=f"{row.relative_fileloc} in bundle {row.bundle_name!r}",
            )
