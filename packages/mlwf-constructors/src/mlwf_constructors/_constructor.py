"""``DagConstructor``: reviewed code that declares typed parameters and builds one DAG per instance."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mlwf_constructors._errors import ConstructorDefinitionError
from mlwf_constructors._ids import check_instance_id
from mlwf_constructors._parameters import PARAM_SCHEMA_DIALECT, Parameter, validate_values

if TYPE_CHECKING:
    from airflow.sdk import DAG, Param

_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class RelatedDag:
    """A DAG other than an instance's own that the instance defines or acts on.

    ``role`` says how: ``"defines"``, the instance's DAG file also defines this DAG (its id must
    be free, and whoever creates, changes or deletes the instance must be allowed to do the same
    to this DAG); ``"uses"``, the instance's runs create runs of this DAG and read its XComs (so
    whoever creates or changes the instance must be allowed to trigger it and read its XComs).
    The constructors API authorizes every related DAG, not only the instance's own.
    """

    dag_id: str
    role: Literal["defines", "uses"]


class DagConstructor:
    """A DAG template with declared, typed parameters.

    Subclasses set ``name`` (the stable reference; for an entry-point constructor it must equal
    the entry point's name), ``version``, ``description`` and ``parameters`` and implement
    :meth:`build_dag`, which must pass ``params`` to the ``DAG`` it returns::

        class TrainEvaluate(DagConstructor):
            name = "train_evaluate"
            version = "1.0.0"
            parameters = (Parameter("epochs", int, default=3, minimum=1),)

            def build_dag(self, dag_id, values, params):
                with DAG(dag_id, schedule=None, params=params) as dag:
                    ...
                return dag
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Parameter, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the declaration when the subclass is defined, naming the class at fault."""
        super().__init_subclass__(**kwargs)
        if cls.name and not _REFERENCE.fullmatch(cls.name):
            raise ConstructorDefinitionError(
                f"{cls.__qualname__}.name {cls.name!r} must match {_REFERENCE.pattern}"
            )
        for attribute in ("version", "description"):
            # The API's typed responses carry both as strings: a number here would fail there.
            if not isinstance(getattr(cls, attribute), str):
                raise ConstructorDefinitionError(
                    f"{cls.__qualname__}.{attribute} must be a string, "
                    f"not {type(getattr(cls, attribute)).__name__}"
                )
        names = [p.name for p in cls.parameters]
        if not all(isinstance(p, Parameter) for p in cls.parameters):
            raise ConstructorDefinitionError(
                f"{cls.__qualname__}.parameters must hold Parameter objects only"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConstructorDefinitionError(
                f"{cls.__qualname__} declares parameter(s) {', '.join(duplicates)} twice"
            )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Return the DAG of one instance; ``values`` are validated, ``params`` go to ``DAG(params=...)``."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement build_dag()")

    def related_dags(self, instance_id: str, values: Mapping[str, Any]) -> Sequence[RelatedDag]:
        """Return the DAGs besides ``instance_id`` that the instance defines or uses (none by default).

        ``values`` are validated and complete. Override when the built DAG defines a second DAG
        or triggers, or reads from, other DAGs: the constructors API then authorizes the user on
        each of them as well (see :class:`RelatedDag`).
        """
        return ()

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """Return the JSON schema of the constructor's parameters (an object schema)."""
        properties: dict[str, Any] = {}
        for param in cls.parameters:
            properties[param.name] = param.schema()
            if param.has_default:
                properties[param.name]["default"] = param.default
        return {
            "type": "object",
            "properties": properties,
            "required": [p.name for p in cls.parameters if not p.has_default],
            "additionalProperties": False,
        }

    @classmethod
    def validate(cls, values: Any) -> dict[str, Any]:
        """Return complete values (defaults filled in); raise ParameterValidationError otherwise."""
        return validate_values(cls.parameters, values)

    def params(self, values: Mapping[str, Any]) -> dict[str, Param]:
        """Return Airflow ``Param`` objects whose defaults are the instance's values."""
        from airflow.sdk import Param

        params: dict[str, Param] = {}
        for p in self.parameters:
            schema = p.schema()
            schema.pop("description", None)  # Param takes it as its own argument
            schema["$schema"] = PARAM_SCHEMA_DIALECT
            params[p.name] = Param(values[p.name], description=p.description or None, **schema)
        return params

    def build(self, instance_id: str, values: Any) -> DAG:
        """Validate ``values`` and return the instance's DAG (its dag_id is ``instance_id``)."""
        check_instance_id(instance_id)
        complete = self.validate(values)
        dag = self.build_dag(instance_id, complete, self.params(complete))
        label = f"constructor {self.name or type(self).__qualname__!r}"
        if getattr(dag, "dag_id", None) != instance_id:
            raise ConstructorDefinitionError(
                f"{label} built a DAG with id {getattr(dag, 'dag_id', None)!r}, expected "
                f"{instance_id!r}: pass dag_id to DAG()"
            )
        missing = [p.name for p in self.parameters if p.name not in dag.params]
        if missing:
            raise ConstructorDefinitionError(
                f"{label} built DAG {instance_id!r} without param(s) {', '.join(missing)}: "
                "pass params to DAG()"
            )
        return dag
