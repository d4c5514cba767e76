"""``@typed`` declarations and TaskFlow annotations."""

from __future__ import annotations

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
