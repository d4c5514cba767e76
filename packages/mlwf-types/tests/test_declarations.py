"""``@typed`` declarations and TaskFlow annotations."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from airflow.sdk import BaseOperator
from mlwf_types import TypeDeclarationError, declaration_of, typed
from typed_operators import TrainOperator


def test_unknown_input_name_is_refused_with_the_known_arguments() -> None:
    """Declaring an input the constructor does not take names the class and its arguments."""
    with pytest.raises(TypeDeclarationError) as caught:

        @typed(inputs={"lr": float})
        class Op(BaseOperator):
            def __init__(self, rate: float, task_id: str) -> None:
                super().__init__(task_id=task_id)

    assert str(caught.value) == (
        "@typed on test_unknown_input_name_is_refused_with_the_known_arguments.<locals>.Op: input 'lr' "
        "is not an argument of test_unknown_input_name_is_refused_with_the_known_arguments.<locals>.Op.__init__ "
        "(its arguments: rate, task_id)"
    )


def test_a_non_type_is_refused() -> None:
    """A declaration whose value is not a type hint is an error naming it."""
    with pytest.raises(
        TypeDeclarationError,
        match="output 'return_value' is declared as 3, which is not a type hint",
    ):

        @typed(outputs={"return_value": 3})
        class Op(BaseOperator):
            pass


def test_subclass_declarations_extend_the_parent() -> None:
    """A decorated subclass inherits its parent's declarations and may add outputs."""

    @typed(outputs={"extra": int})
    class More(TrainOperator):
        pass

    declaration = declaration_of(More(task_id="m"))
    assert declaration is not None
    assert dict(declaration.outputs or {}) == {
        "return_value": str,
        "metrics": dict[str, float],
        "extra": int,
    }


def test_undecorated_subclass_inherits_declaration() -> None:
    """Declarations are inherited by plain subclasses too."""

    class Same(TrainOperator):
        pass

    declaration = declaration_of(Same(task_id="s"))
    assert declaration is not None and "metrics" in (declaration.outputs or {})


def test_unresolvable_taskflow_annotation_is_reported(tmp_path: Any) -> None:
    """A string annotation naming an unknown class becomes an error, not a crash."""
    import datetime

    from airflow.sdk import DAG, task
    from mlwf_types import check_dag

    with DAG(
        "d", schedule=None, start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ) as dag:

        @task
        def f(x: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

        f(1)
    issues = check_dag(dag)
    assert [i.severity for i in issues] == ["error"]
    assert "its annotations cannot be resolved (NameError" in issues[0].message


def _function_in(namespace: dict[str, Any], source: str) -> Any:
    """Define a function from ``source`` in a module namespace of its own (as a DAG file would)."""
    exec(compile(source, "<dag file>", "exec"), namespace)
    return namespace["f"]


def test_a_reused_annotation_value_follows_what_its_names_mean_in_each_file() -> None:
    """An annotation string is evaluated in each function's own globals: a file's own ``Optional``
    or ``float`` is its own, whatever another file's same string gave (the value cache is keyed by
    what the names are)."""
    from mlwf_types._declarations import _EVALUATED, _compiled, resolve_annotations

    assert _compiled("list[float]")[1] == ("list", "float")  # names only: its value is reusable
    assert _compiled("typing.Optional[int]")[1] is None  # an attribute read: evaluated each time
    header = "from __future__ import annotations\n"
    src = (
        header
        + "def f(x: Optional[float], y: list[float], z: int | None) -> dict[str, float]: ...\n"
    )
    standard = _function_in({"Optional": typing.Optional}, src)
    for _ in range(2):  # the second time from the cache
        assert (
            resolve_annotations(standard)["y"] is _EVALUATED[("list[float]", (id(list), id(float)))]
        )
        assert resolve_annotations(standard) == {
            "x": typing.Optional[float],
            "y": list[float],
            "z": int | None,
            "return": dict[str, float],
        }

    class Optional:  # a file's own generic named like typing's
        def __class_getitem__(cls, item: Any) -> str:
            return f"own[{item.__name__}]"

    own = _function_in({"Optional": Optional, "float": int}, src)
    hints = resolve_annotations(own)
    assert hints["x"] == "own[int]"  # its own Optional, over its own float
    assert hints["y"] == list[int]
    attribute = _function_in(
        {"typing": typing}, header + "def f(x: typing.Optional[int]) -> None: ...\n"
    )
    assert resolve_annotations(attribute)["x"] == typing.Optional[int]


def test_the_checker_reads_a_function_making_many_tasks_once() -> None:
    """One TaskFlow function called in a loop makes many tasks; the checker's memo is per DAG and
    keyed by the function itself, and a function read elsewhere is read afresh (no memo on it)."""
    import datetime

    from airflow.sdk import DAG, task
    from mlwf_types._declarations import declaration_of

    with DAG(
        "loop", schedule=None, start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ) as dag:

        @task
        def square(x: int) -> int:
            return x * x

        for i in range(3):
            square.override(task_id=f"square_{i}")(i)
    memo: dict[Any, Any] = {}
    declarations = [declaration_of(t, memo) for t in dag.tasks]
    assert len(memo) == 1
    assert declarations[0] is declarations[1] is declarations[2]
    assert declarations[0] is not None and declarations[0].inputs == {"x": int}
    fresh = declaration_of(dag.tasks[0])
    assert fresh == declarations[0] and fresh is not declarations[0]
    assert not hasattr(square.function, "__mlwf_types_info__")


def test_task_kind_is_kept_per_class_not_inherited() -> None:
    """What a task is (TaskFlow, mapped) is kept on its own class: a subclass asks afresh."""
    from mlwf_types._sdk import task_kind

    class Plain(BaseOperator):
        pass

    assert task_kind(Plain(task_id="p")) == (False, False, False)
    assert Plain.__dict__["__mlwf_types_kind__"] == (False, False, False)

    class Child(Plain):
        pass

    assert "__mlwf_types_kind__" not in Child.__dict__
    assert task_kind(Child(task_id="c")) == (False, False, False)
    assert "__mlwf_types_kind__" in Child.__dict__
