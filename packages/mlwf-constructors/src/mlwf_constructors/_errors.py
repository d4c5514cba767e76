"""The exceptions of mlwf-constructors; every message names the thing at fault."""

from __future__ import annotations


class ConstructorsError(Exception):
    """Base class of every error raised by mlwf-constructors."""


class ParameterValidationError(ConstructorsError, ValueError):
    """A parameter value (or the set of values) does not satisfy a constructor's declaration."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"parameter {parameter!r}: {message}")
        self.parameter = parameter


class ConstructorDefinitionError(ConstructorsError, TypeError):
    """A ``DagConstructor`` subclass is declared wrongly (bad parameter, bad built DAG)."""


class ConstructorNotFoundError(ConstructorsError, LookupError):
    """No constructor is registered under the requested reference."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"no DAG constructor named {reference!r} is registered")
        self.reference = reference


class ConstructorRefusedError(ConstructorsError, ValueError):
    """A constructor raised an error of its own while building (or describing) an instance's DAG from values.

    The values passed the declared parameters, but the constructor's code refused them (e.g. a
    JSON parameter it parses is invalid); the message names the constructor and its reason.
    """

    def __init__(self, reference: str, reason: BaseException | str) -> None:
        text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        super().__init__(f"constructor {reference!r} refused the values: {text}")
        self.reference = reference


class InvalidInstanceIdError(ConstructorsError, ValueError):
    """An instance id is not a safe DAG id / file name."""


class InstanceExistsError(ConstructorsError):
    """An instance (or a DAG or file it would need) with this id already exists."""


class DagIdTakenError(InstanceExistsError):
    """A DAG id an instance would define (its own or another) is taken.

    ``str()`` says which id and never where it is defined; ``location`` (a file and bundle, when
    known) is for callers who may read that DAG.
    """

    def __init__(self, dag_id: str, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.dag_id = dag_id
        self.location = location


class InstanceNotFoundError(ConstructorsError, LookupError):
    """No instance with this id is stored."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"no constructor instance with id {instance_id!r}")
        self.instance_id = instance_id


class StoreError(ConstructorsError):
    """The instance store is unusable (bad URL, unknown schema version, corrupt row)."""


class StoreCommitError(StoreError):
    """The store refused to commit a change whose file write had already happened."""


class AirflowHomeError(ValueError):
    """No Airflow configuration where the command was pointed (or would look by default)."""
