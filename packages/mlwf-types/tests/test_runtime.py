"""Run-time guards: declared inputs checked before ``execute``, outputs before they are pushed."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from airflow.sdk import DAG, task
from mlwf_types import XComTypeError
from mlwf_types._declarations import taskflow_declaration
from mlwf_types._runtime import check_result, check_taskflow_call, install_taskflow_guard
from typed_operators import BatchOperator, CountOperator, Metrics, TrainOperator, ValidateOperator

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class RecordingTaskInstance:
    """Stands in for the Task SDK's RuntimeTaskInstance: records what reaches ``xcom_push``."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture(autouse=True)
def error_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "error")


def test_rendered_inputs_are_checked_before_execute() -> None:
    """A value that rendered to the wrong type fails the task before ``execute`` runs."""
    op = CountOperator(task_id="count", count="{{ params.n }}")
    op.count = "7"  # what Jinja renders: a string
    with pytest.raises(XComTypeError) as caught:
        op.execute({"ti": RecordingTaskInstance()})
    assert str(caught.value) == (
        "DAG 'adhoc_airflow' task 'count' argument 'count' expects int, but received '7' (str) at run time"
    )


def test_nested_input_mismatch_names_the_element() -> None:
    """The error points at the offending element inside a container."""
    op = BatchOperator(task_id="b", items=[1, 2], options={"lr": 0.1, "wd": "no"}, pair=(1, "a"))
    with pytest.raises(
        XComTypeError, match=r"argument \"options\['wd'\]\" expects float, but received 'no'"
    ):
        op.execute({"ti": RecordingTaskInstance()})


def test_explicit_push_of_a_wrong_value_is_refused_and_not_pushed() -> None:
    """``xcom_push`` of a value that breaks the declaration raises and stores nothing."""

    class BadTrain(TrainOperator):
        def execute(self, context: Any) -> Any:
            context["ti"].xcom_push(key="metrics", value={"accuracy": "high"})
            return "file:///m"

    ti = RecordingTaskInstance()
    with pytest.raises(XComTypeError, match=r"XCom 'metrics' is declared as dict\[str, float\]"):
        BadTrain(task_id="t").execute({"ti": ti})
    assert ti.pushed == {}
    assert "xcom_push" not in vars(ti), "the interception is undone after execute"


def test_push_of_an_undeclared_key_is_refused() -> None:
    """Pushing a key the operator does not declare fails."""

    class Chatty(TrainOperator):
        def execute(self, context: Any) -> Any:
            context["ti"].xcom_push(key="debug", value=1)
            return "x"

    ti = RecordingTaskInstance()
    with pytest.raises(XComTypeError, match="pushes XCom 'debug', which it does not declare"):
        Chatty(task_id="t").execute({"ti": ti})
    assert ti.pushed == {}


def test_wrong_return_value_fails_before_airflow_pushes_it() -> None:
    """A return value of the wrong type raises from ``execute``, so the runner never pushes it."""

    class Wrong(TrainOperator):
        def execute(self, context: Any) -> Any:
            return 17

    with pytest.raises(
        XComTypeError,
        match=r"XCom 'return_value' is declared as str, but the task produced 17 \(int\)",
    ):
        Wrong(task_id="t").execute({"ti": RecordingTaskInstance()})


def test_correct_values_pass_through_unchanged() -> None:
    """A well-typed operator runs and pushes as usual."""
    ti = RecordingTaskInstance()
    assert TrainOperator(task_id="t").execute({"ti": ti}) == "file:///models/1"
    assert ti.pushed == {"metrics": {"accuracy": 0.9}}
    assert ValidateOperator(task_id="v", model_uri="m", threshold=1).execute({"ti": ti}) is True


def test_warn_mode_logs_and_continues(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In warn mode a mismatch is logged and the task goes on."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "warn")
    op = CountOperator(task_id="count", count="7")
    assert op.execute({"ti": RecordingTaskInstance()}) == "7"
    assert "expects int, but received '7'" in caplog.text


def test_off_mode_checks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """In off mode the guard is inert."""
    monkeypatch.setenv("AIRFLOW__MLWF_TYPES__MODE", "off")
    assert CountOperator(task_id="count", count="7").execute({"ti": RecordingTaskInstance()}) == "7"


def _taskflow_check(op: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a TaskFlow task's callable the way the installed guard does: check, call, check."""
    func = op.python_callable
    declaration = taskflow_declaration(func, multiple_outputs=bool(op.multiple_outputs))
    check_taskflow_call("error", f"DAG 'd' task {op.task_id!r}", declaration, args, kwargs)
    result = func(*args, **kwargs)
    check_result(
        "error", f"DAG 'd' task {op.task_id!r}", declaration, result, bool(op.multiple_outputs)
    )
    return result


def test_taskflow_guard_checks_arguments_and_result() -> None:
    """A plain @task's bound arguments and returned value are validated."""
    with DAG("d", schedule=None, start_date=START):

        @task
        def scale(n: int, factor: float = 2.0) -> int:
            return n * factor  # type: ignore[return-value]

        op = scale(3).operator
    with pytest.raises(
        XComTypeError, match=r"task 'scale' argument 'n' expects int, but received 'x'"
    ):
        _taskflow_check(op, "x")
    with pytest.raises(
        XComTypeError, match=r"XCom 'return_value' is declared as int, but the task produced 6.0"
    ):
        _taskflow_check(op, 3)
    assert _taskflow_check(op, 3, factor=1) == 3


def test_taskflow_context_arguments_are_not_checked() -> None:
    """Values Airflow injects from the context (``ti``, ``params``, ...) are not user inputs."""
    with DAG("d", schedule=None, start_date=START):

        @task
        def f(n: int, ti: int | None = None) -> None:
            pass

        op = f(1).operator
    _taskflow_check(op, 1, ti=object())


def test_taskflow_guard_checks_each_multiple_output() -> None:
    """With multiple_outputs, each pushed key is validated against the TypedDict."""
    with DAG("d", schedule=None, start_date=START):

        @task(multiple_outputs=True)
        def evaluate(ok: bool) -> Metrics:
            return {"accuracy": 1.0, "loss": 0.1} if ok else {"accuracy": 1.0, "loss": "none"}  # type: ignore[typeddict-item]

        op = evaluate(True).operator
    assert _taskflow_check(op, True)["loss"] == 0.1
    with pytest.raises(XComTypeError, match=r"\['loss'\]"):
        _taskflow_check(op, False)


def test_taskflow_guard_is_installed_once_on_the_class() -> None:
    """The guard wraps Airflow's TaskFlow operator class once, however often the policy runs."""
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    install_taskflow_guard()
    first = _PythonDecoratedOperator.execute_callable
    install_taskflow_guard()
    assert _PythonDecoratedOperator.execute_callable is first
    assert getattr(first, "__mlwf_types_guard__", False)
