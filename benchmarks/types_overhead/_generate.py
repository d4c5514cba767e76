"""Generate the DAG files the benchmark parses (into a temp dir; never committed).

Every file holds one DAG of ``BLOCKS_PER_DAG * TASKS_PER_BLOCK + 1`` typed tasks: TaskFlow tasks
annotated with int, float, str, list[float], dict[str, float], Optional and a TypedDict with
``multiple_outputs``; XCom edges in chains and fan-ins, nested in lists and dicts; ``.expand``
mapped TaskFlow and classic tasks; and classic operators declared with ``mlwf_types.typed``
(defined in a helper module beside, not inside, the DAG folder). Every DAG is type-correct.
"""

from __future__ import annotations

import random
from pathlib import Path

HELPER_MODULE = "mlwf_bench_ops"
BLOCKS_PER_DAG = 4
TASKS_PER_BLOCK = 14
TASKS_PER_DAG = BLOCKS_PER_DAG * TASKS_PER_BLOCK + 1

HELPER_SOURCE = '''\
"""Typed operators and shared types imported by the generated benchmark DAGs."""

from __future__ import annotations

from typing import Any, TypedDict

from airflow.sdk import BaseOperator
from mlwf_types import typed


class Stats(TypedDict):
    mean: float
    n: int
    name: str


@typed(
    inputs={"values": list[float], "threshold": float},
    outputs={"return_value": float, "passed": bool},
)
class ScoreOperator(BaseOperator):
    template_fields = ("values", "threshold")

    def __init__(self, *, values: Any, threshold: Any = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = values
        self.threshold = threshold

    def execute(self, context: Any) -> Any:
        score = sum(self.values) / max(len(self.values), 1)
        context["ti"].xcom_push(key="passed", value=score >= self.threshold)
        return score


@typed(
    inputs={"score": float, "caption": str, "limits": dict[str, float]},
    outputs={"return_value": bool},
)
class GateOperator(BaseOperator):
    template_fields = ("score", "caption", "limits")

    def __init__(self, *, score: Any, caption: Any, limits: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.score = score
        self.caption = caption
        self.limits = limits

    def execute(self, context: Any) -> Any:
        return self.limits.get("min", 0.0) <= self.score <= self.limits.get("max", 1.0)
'''

_HEADER = """\
{future}import datetime
from collections.abc import Sequence
from typing import Optional

from airflow.sdk import DAG, XComArg, task
from {helper} import GateOperator, ScoreOperator, Stats

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["mlwf-bench"],
) as dag:
"""

# One block: 14 tasks. {b} is the block suffix; the other fields vary per file.
_BLOCK = """
    @task
    def load_{b}() -> list[float]:
        return [{v1}, {v2}, {v3}]

    @task
    def count_{b}(xs: list[float]) -> int:
        return len(xs)

    @task
    def mean_{b}(xs: list[float], n: int) -> float:
        return sum(xs) / max(n, 1)

    @task(multiple_outputs=True)
    def stats_{b}(xs: list[float], name: str) -> Stats:
        return {{"mean": sum(xs) / len(xs), "n": len(xs), "name": name}}

    @task
    def label_{b}(score: float, n: int) -> str:
        return f"{{score:.2f}}/{{n}}"

    @task
    def combine_{b}(parts: list[float], weights: dict[str, float], note: Optional[str] = None) -> dict[str, float]:
        return {{"min": min(parts), "max": max(parts) * weights.get("scale", 1.0)}}

    @task
    def scale_{b}(x: float, factor: float = {factor}) -> float:
        return x * factor

    @task
    def total_{b}(values: Sequence[float]) -> float:
        return float(sum(values))

    @task
    def batches_{b}() -> list[list[float]]:
        return [[{v1}, {v2}], [{v3}]]

    @task
    def report_{b}(passed: bool, best: float, size: Optional[int], tags: list[str]) -> None:
        print(passed, best, size, tags)

    @task
    def best_{b}(scores: Sequence[float], floor: float) -> float:
        return max([floor, *scores])

    xs_{b} = load_{b}()
    n_{b} = count_{b}(xs_{b})
    m_{b} = mean_{b}(xs_{b}, n_{b})
    st_{b} = stats_{b}(xs_{b}, name="block_{b}")
    lb_{b} = label_{b}(st_{b}["mean"], n=st_{b}["n"])
    cb_{b} = combine_{b}(
        parts=[m_{b}, st_{b}["mean"], n_{b}, {v1}],
        weights={{"scale": m_{b}, "bias": {v2}}},
        note={note},
    )
    scaled_{b} = scale_{b}.expand(x=xs_{b})
    tot_{b} = total_{b}(scaled_{b})
    score_{b} = ScoreOperator(task_id="score_{b}", values=xs_{b}, threshold=m_{b})
    mapped_score_{b} = ScoreOperator.partial(task_id="mapped_score_{b}", threshold={threshold}).expand(
        values=batches_{b}()
    )
    gate_{b} = GateOperator(
        task_id="gate_{b}",
        score=score_{b}.output,
        caption=lb_{b},
        limits=cb_{b},
    )
    report_{b}(
        XComArg(score_{b}, key="passed"),
        best=st_{b}["mean"],
        size={size},
        tags=[lb_{b}, st_{b}["name"], "static"],
    )
    bst_{b} = best_{b}(mapped_score_{b}.output, floor=tot_{b})
    gate_{b} >> bst_{b}
"""

_FOOTER = """
    @task
    def summarize(totals: list[float], labels: dict[str, str], count: int) -> dict[str, float]:
        return {{"total": sum(totals), "labels": float(len(labels)), "count": float(count)}}

    summarize(
        totals=[{totals}],
        labels={{{labels}}},
        count=n_{first},
    )
"""

# A DAG with one deliberate mismatch (float argument fed from a str XCom): the policy must refuse it.
BAD_DAG = """\
import datetime

from airflow.sdk import DAG, task

with DAG("mlwf_bench_mismatch", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

    @task
    def produce() -> str:
        return "0.5"

    @task
    def consume(score: float) -> float:
        return score * 2

    consume(produce())
"""


def dag_source(index: int) -> str:
    """The source of DAG file number ``index`` (deterministic)."""
    rng = random.Random(index)
    # Half the files postpone annotation evaluation (strings resolved by get_type_hints).
    future = "from __future__ import annotations\n\n" if index % 2 else ""
    parts = [_HEADER.format(future=future, helper=HELPER_MODULE, dag_id=f"mlwf_bench_{index:04d}")]
    blocks = [f"b{k}" for k in range(BLOCKS_PER_DAG)]
    for b in blocks:
        parts.append(
            _BLOCK.format(
                b=b,
                v1=round(rng.uniform(0, 1), 3),
                v2=round(rng.uniform(0, 1), 3),
                v3=rng.randint(1, 9),  # an int literal inside list[float]: the numeric tower
                factor=round(rng.uniform(0.5, 2), 2),
                threshold=rng.choice(["0.25", "0.5", "1"]),
                note=rng.choice(["None", f"lb_{b}", '"static note"']),
                size=rng.choice(["None", f"n_{b}", "3"]),
            )
        )
    parts.append(
        _FOOTER.format(
            totals=", ".join(f"tot_{b}" for b in blocks),
            labels=", ".join(f'"{b}": lb_{b}' for b in blocks),
            first=blocks[0],
        )
    )
    return "".join(parts)


def write_dags(dag_dir: Path, helper_dir: Path, files: int) -> None:
    """Write ``files`` DAG files into ``dag_dir`` and the helper module into ``helper_dir``."""
    dag_dir.mkdir(parents=True, exist_ok=True)
    helper_dir.mkdir(parents=True, exist_ok=True)
    (helper_dir / f"{HELPER_MODULE}.py").write_text(HELPER_SOURCE, encoding="utf-8")
    for i in range(files):
        (dag_dir / f"mlwf_bench_{i:04d}.py").write_text(dag_source(i), encoding="utf-8")


def write_sanity_dags(sanity_dir: Path) -> None:
    """A good DAG (a copy of the benchmark's first, renamed) and the deliberately mismatched one."""
    sanity_dir.mkdir(parents=True, exist_ok=True)
    good = dag_source(0).replace("mlwf_bench_0000", "mlwf_bench_sanity_good")
    (sanity_dir / "good.py").write_text(good, encoding="utf-8")
    (sanity_dir / "mismatch.py").write_text(BAD_DAG, encoding="utf-8")
