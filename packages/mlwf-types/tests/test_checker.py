"""The static checker over DAGs built in-process with the real Task SDK."""

# No `from __future__ import annotations`: parametrized tests annotate with local variables.
import dataclasses
import datetime
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Optional, Union

import pydantic
import pytest
from airflow.sdk import DAG, XComArg, task
from mlwf_types import TypeIssue, check_dag
from typed_operators import (
    BatchOperator,
    CountOperator,
    Metrics,
    ModelRef,
    TrainOperator,
    UntypedOperator,
    ValidateOperator,
)

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def dag() -> Iterator[DAG]:
    with DAG("d", schedule=None, start_date=START) as d:
        yield d


def errors(dag: DAG) -> list[TypeIssue]:
    return [i for i in check_dag(dag) if i.severity == "error"]


def only(dag: DAG) -> TypeIssue:
    issues = check_dag(dag)
    assert len(issues) == 1, [i.message for i in issues]
    return issues[0]


# ------------------------------------------------------------------ TaskFlow


def test_matching_taskflow_edges_report_nothing(dag: DAG) -> None:
    """A chain whose annotations agree gives no issue."""

    @task
    def load() -> list[float]:
        return [1.0]

    @task
    def best(scores: list[float]) -> float:
        return max(scores)

    @task
    def show(value: float, label: str = "x") -> None:
        pass

    show(best(load()), label="acc")
    assert check_dag(dag) == []


def test_taskflow_mismatch_names_everything(dag: DAG) -> None:
    """A str output feeding an int parameter is one error naming DAG, task, argument, producer, key and types."""

    @task
    def produce() -> str:
        return "x"

    @task
    def consume(n: int) -> None:
        pass

    consume(produce())
    issue = only(dag)
    assert issue == TypeIssue(
        dag_id="d",
        task_id="consume",
        argument="n",
        producer_task_id="produce",
        xcom_key="return_value",
        expected="int",
        actual="str",
        severity="error",
        message="DAG 'd' task 'consume' argument 'n' expects int, but task 'produce' pushes XCom "
        "'return_value' of type str",
    )


def test_positional_and_keyword_arguments_are_both_checked(dag: DAG) -> None:
    """Positional op_args and keyword op_kwargs bind to parameter names."""

    @task
    def text() -> str:
        return "x"

    @task
    def two(a: int, b: int) -> None:
        pass

    two(text(), b=text())
    assert sorted(i.argument or "" for i in errors(dag)) == ["a", "b"]


def test_all_issues_of_a_dag_are_reported_at_once(dag: DAG) -> None:
    """Three wrong edges give three issues, not one."""

    @task
    def text() -> str:
        return "x"

    @task
    def number(n: int) -> None:
        pass

    for _ in range(3):
        number(text())
    assert len(errors(dag)) == 3


@pytest.mark.parametrize(
    ("produced", "expected"),
    [
        (int, float),  # numeric tower
        (bool, int),
        (int, complex),
        (list[int], list[float]),  # covariant element types: XCom values are copies
        (dict[str, int], dict[str, float]),
        (list[int], Optional[list[float]]),
        (Literal["a", "b"], str),
        (tuple[int, str], tuple[int, str]),
        (tuple[int, int], tuple[float, ...]),
        (Metrics, Metrics),
        (Metrics, dict[str, float]),
        (ModelRef, ModelRef),
        (int, Any),
        (Any, int),
        (int, Union[int, str]),
        (list[list[int]], list[list[float]]),
    ],
)
def test_compatible_types_pass(dag: DAG, produced: Any, expected: Any) -> None:
    """Subtypes, the numeric tower and covariant containers are accepted."""

    @task
    def produce() -> produced:  # type: ignore[valid-type]
        return None

    @task
    def consume(value: expected) -> None:  # type: ignore[valid-type]
        pass

    consume(produce())
    assert check_dag(dag) == []


class Config(pydantic.BaseModel):
    rate: float


@dataclasses.dataclass
class Other:
    uri: str


class Base:
    pass


class Child(Base):
    pass


@pytest.mark.parametrize(
    ("produced", "expected", "actual_text", "expected_text"),
    [
        (float, int, "float", "int"),
        (list[str], list[int], "list[str]", "list[int]"),
        (dict[str, str], dict[str, float], "dict[str, str]", "dict[str, float]"),
        (Optional[int], int, "int | None", "int"),
        (Union[int, str], int, "int | str", "int"),
        (Literal["a", "b"], Literal["a"], "Literal['a', 'b']", "Literal['a']"),
        (tuple[int, str], tuple[int, int], "tuple[int, str]", "tuple[int, int]"),
        (tuple[int, ...], tuple[int, int], "tuple[int, ...]", "tuple[int, int]"),
        (dict[str, float], Metrics, "dict[str, float]", "Metrics"),
        (Config, ModelRef, "Config", "ModelRef"),
        (Other, ModelRef, "Other", "ModelRef"),
        (Base, Child, "Base", "Child"),
        (list[list[str]], list[list[int]], "list[list[str]]", "list[list[int]]"),
        (list[int], tuple[int, ...], "list[int]", "tuple[int, ...]"),
        (str, list[str], "str", "list[str]"),
    ],
)
def test_incompatible_types_fail(
    dag: DAG, produced: Any, expected: Any, actual_text: str, expected_text: str
) -> None:
    """Wrong element types, optional into required, narrower literals, wrong classes are errors."""

    @task
    def produce() -> produced:  # type: ignore[valid-type]
        return None

    @task
    def consume(value: expected) -> None:  # type: ignore[valid-type]
        pass

    consume(produce())
    issue = only(dag)
    assert (issue.severity, issue.expected, issue.actual) == ("error", expected_text, actual_text)


def test_typeddict_multiple_outputs_keys_are_typed(dag: DAG) -> None:
    """With multiple_outputs a TypedDict's keys are the producer's XCom keys, each with its type."""

    @task(multiple_outputs=True)
    def evaluate() -> Metrics:
        return {"accuracy": 1.0, "loss": 0.0}

    @task
    def gate(accuracy: float, loss: str) -> None:
        pass

    out = evaluate()
    gate(out["accuracy"], out["loss"])
    issue = only(dag)
    assert (issue.argument, issue.xcom_key, issue.expected, issue.actual) == (
        "loss",
        "loss",
        "str",
        "float",
    )


def test_undeclared_key_of_a_typeddict_producer(dag: DAG) -> None:
    """Reading a key the producer does not declare is an error listing the declared keys."""

    @task(multiple_outputs=True)
    def evaluate() -> Metrics:
        return {"accuracy": 1.0, "loss": 0.0}

    @task
    def gate(value: float) -> None:
        pass

    gate(evaluate()["f1"])
    issue = only(dag)
    assert issue.message == (
        "DAG 'd' task 'gate' argument 'value' reads the XCom 'f1' of task 'evaluate', which "
        "'evaluate' does not declare (its declared keys: 'accuracy', 'loss', 'return_value')"
    )


def test_dict_multiple_outputs_types_every_key(dag: DAG) -> None:
    """``dict[str, T]`` with multiple_outputs gives every key the type T."""

    @task(multiple_outputs=True)
    def scores() -> dict[str, int]:
        return {}

    @task
    def use(a: int, b: str) -> None:
        pass

    s = scores()
    use(s["anything"], s["other"])
    issue = only(dag)
    assert (issue.argument, issue.xcom_key, issue.actual) == ("b", "other", "int")


def test_untyped_producer_and_consumer_are_not_checked(dag: DAG) -> None:
    """Without annotations there is nothing to compare: no issue, no false alarm."""

    @task
    def produce():  # type: ignore[no-untyped-def]
        return "x"

    @task
    def consume(n: int) -> None:
        pass

    @task
    def loose(n):  # type: ignore[no-untyped-def]
        pass

    consume(produce())
    loose(produce())
    assert check_dag(dag) == []


def test_literal_arguments_are_checked(dag: DAG) -> None:
    """A literal of the wrong type is an error that shows the value."""

    @task
    def consume(n: int, names: list[str]) -> None:
        pass

    consume("three", ["a", 2])
    issues = errors(dag)
    assert [i.message for i in issues] == [
        "DAG 'd' task 'consume' argument 'n' expects int, but gets the literal 'three' (str)",
        "DAG 'd' task 'consume' argument 'names[1]' expects str, but gets the literal 2 (int)",
    ]


def test_xcoms_nested_in_containers_are_checked_element_wise(dag: DAG) -> None:
    """XComArgs inside list, dict and tuple literals are checked against the element types."""

    @task
    def text() -> str:
        return "x"

    @task
    def number() -> int:
        return 1

    @task
    def consume(items: list[int], table: dict[str, float], pair: tuple[int, str]) -> None:
        pass

    consume([number(), text()], {"a": number(), "b": text()}, (text(), text()))
    assert sorted(i.argument or "" for i in errors(dag)) == ["items[1]", "pair[0]", "table['b']"]


def test_container_kind_mismatch_around_an_xcom(dag: DAG) -> None:
    """A list literal holding an XComArg where a dict is expected is an error."""

    @task
    def number() -> int:
        return 1

    @task
    def consume(table: dict[str, int]) -> None:
        pass

    consume([number()])  # type: ignore[arg-type]
    assert (
        only(dag).message
        == "DAG 'd' task 'consume' argument 'table' expects dict[str, int], but gets a list"
    )


def test_jinja_template_feeding_non_str_is_a_warning(dag: DAG) -> None:
    """A template string into an int parameter is only known at run time: a warning, not an error."""

    @task
    def consume(n: int, day: str) -> None:
        pass

    consume("{{ params.n }}", "{{ ds }}")
    issue = only(dag)
    assert issue.severity == "warning"
    assert issue.argument == "n"
    assert "known only at run time" in issue.message


# ------------------------------------------------------------------ mapped tasks


def test_expand_over_a_list_feeds_its_element_type(dag: DAG) -> None:
    """``.expand`` over ``list[T]`` feeds T to each mapped task."""

    @task
    def numbers() -> list[int]:
        return [1]

    @task
    def words() -> list[str]:
        return ["a"]

    @task
    def square(n: int, scale: float) -> int:
        return n

    square.partial(scale=2).expand(n=numbers())
    square.partial(scale=2).expand(n=words())
    issue = only(dag)
    assert issue.message == (
        "DAG 'd' task 'square__1' argument 'n' expects int for each mapped task, but is expanded over "
        "XCom 'return_value' of task 'words', of type list[str] (elements str)"
    )


def test_expand_literals_and_partial_arguments(dag: DAG) -> None:
    """Literal expand lists are checked per element; partial arguments like plain ones."""

    @task
    def square(n: int, scale: float) -> int:
        return n

    square.partial(scale="big").expand(n=[1, "two"])
    assert sorted(i.argument or "" for i in errors(dag)) == ["n[1]", "scale"]


def test_expand_over_a_non_list_is_an_error(dag: DAG) -> None:
    """Expanding over an int cannot work."""

    @task
    def one() -> int:
        return 1

    @task
    def use(n: int) -> None:
        pass

    use.expand(n=one())
    assert "which is not a list" in only(dag).message


def test_mapped_producer_delivers_a_sequence(dag: DAG) -> None:
    """A mapped task's output reaches a downstream task as a lazy sequence, not a list."""

    @task
    def double(n: int) -> int:
        return 2 * n

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @task
    def total_seq(values: Sequence[int]) -> int:
        return sum(values)

    doubled = double.expand(n=[1, 2])
    total(doubled)
    total_seq(doubled)
    issue = only(dag)
    assert (issue.task_id, issue.expected, issue.actual) == ("total", "list[int]", "Sequence[int]")


def test_expand_kwargs_literal_dicts(dag: DAG) -> None:
    """``expand_kwargs`` with literal dicts checks each dict's values."""

    @task
    def use(n: int, s: str) -> None:
        pass

    use.expand_kwargs([{"n": 1, "s": "a"}, {"n": "x", "s": "b"}])
    assert [i.argument for i in errors(dag)] == ["n"]


# ------------------------------------------------------------------ classic operators


def test_classic_operator_edges(dag: DAG) -> None:
    """``@typed`` outputs feed ``@typed`` inputs; keyed XComArgs use the key's type."""
    train = TrainOperator(task_id="train")
    ValidateOperator(task_id="ok", model_uri=train.output)
    CountOperator(task_id="bad", count=train.output)
    CountOperator(task_id="bad_key", count=XComArg(train, "metrics"))
    issues = errors(dag)
    assert [(i.task_id, i.xcom_key, i.actual) for i in issues] == [
        ("bad", "return_value", "str"),
        ("bad_key", "metrics", "dict[str, float]"),
    ]


def test_classic_undeclared_key(dag: DAG) -> None:
    """``XComArg(op, 'nope')`` on a typed producer that does not declare 'nope' is an error."""
    train = TrainOperator(task_id="train")
    ValidateOperator(task_id="v", model_uri=XComArg(train, "nope"))
    issue = only(dag)
    assert (issue.producer_task_id, issue.xcom_key) == ("train", "nope")
    assert "does not declare (its declared keys: 'metrics', 'return_value')" in issue.message


def test_xcom_in_non_templated_field_is_an_error(dag: DAG) -> None:
    """Airflow never resolves an XComArg kept in a non-templated attribute."""
    train = TrainOperator(task_id="train")
    ValidateOperator(task_id="v", model_uri="s3://m", threshold=train.output)
    UntypedOperator(task_id="u", hidden=train.output)
    issues = errors(dag)
    assert [(i.task_id, i.argument) for i in issues] == [("v", "threshold"), ("u", "hidden")]
    assert (
        "is not a templated field of ValidateOperator, so Airflow never resolves it"
        in issues[0].message
    )


def test_classic_literal_and_nested_arguments(dag: DAG) -> None:
    """Literal values of declared inputs are checked, nested XComs element-wise."""
    count = CountOperator(task_id="count", count=3)
    BatchOperator(
        task_id="batch",
        items=[count.output, 2, "three"],
        options={"lr": count.output, "name": "x"},
        pair=(count.output, count.output),
    )
    assert sorted(i.argument or "" for i in errors(dag)) == [
        "items[2]",
        "options['name']",
        "pair[1]",
    ]


def test_classic_mapped_operator(dag: DAG) -> None:
    """A classic operator's ``.expand`` is checked against its declared input types."""

    @task
    def uris() -> list[int]:
        return [1]

    ValidateOperator.partial(task_id="v", threshold=0.5).expand(model_uri=uris())
    issue = only(dag)
    assert (issue.argument, issue.expected, issue.actual) == ("model_uri", "str", "int")


def test_untyped_classic_producer_is_not_checked(dag: DAG) -> None:
    """An untyped producer's XCom could be anything: no issue."""
    untyped = UntypedOperator(task_id="u")
    CountOperator(task_id="c", count=untyped.output)
    assert check_dag(dag) == []


def test_taskflow_into_classic_and_back(dag: DAG) -> None:
    """Edges between TaskFlow and classic operators are checked both ways."""

    @task
    def uri() -> int:
        return 1

    @task
    def takes(flag: str) -> None:
        pass

    validate = ValidateOperator(task_id="v", model_uri=uri())
    takes(validate.output)
    assert [(i.task_id, i.actual) for i in errors(dag)] == [("v", "int"), ("takes", "bool")]


def test_expand_over_a_mapping_xcom_is_left_unchecked(dag: DAG) -> None:
    """Expanding over a Mapping-typed XCom (Airflow feeds key/value pairs) is not reported as 'not a list'."""
    from collections.abc import Mapping

    @task
    def table() -> Mapping[str, int]:
        return {}

    @task
    def use(pair: int) -> None:
        pass

    use.expand(pair=table())
    assert check_dag(dag) == []
