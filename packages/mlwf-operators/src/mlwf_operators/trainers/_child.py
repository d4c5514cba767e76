"""The child process of a training run: import the entry point, call it, write its metrics.

Run as ``python -m mlwf_operators.trainers._child SPEC_JSON``. Exit codes: 0 success, 1 the
entry point raised (traceback on stderr), 2 the entry point cannot be loaded or broke the contract.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwf_operators._errors import ContractError as ContractError


def load_entry_point(spec: str) -> Callable[..., Any]:
    """Return the callable named by ``pkg.module:function``, ``pkg.module`` or ``file.py[:function]``."""
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "train")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ContractError(f"trainer file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"_mlwf_trainer_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ContractError(f"cannot load trainer file {path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ContractError(f"cannot import trainer module {target!r}: {exc}") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise ContractError(f"trainer module {target!r} has no callable {attr!r}")
    return function  # type: ignore[no-any-return]


def check_metrics(value: object, spec: str) -> dict[str, float]:
    """Return ``value`` as ``dict[str, float]`` or fail naming what is wrong."""
    if not isinstance(value, dict):
        raise ContractError(
            f"trainer {spec!r} returned {type(value).__name__}, expected dict[str, float] of metrics"
        )
    metrics: dict[str, float] = {}
    for key, number in value.items():
        if (
            not isinstance(key, str)
            or isinstance(number, bool)
            or not isinstance(number, (int, float))
        ):
            raise ContractError(
                f"trainer {spec!r} returned metric {key!r}: {number!r}; metrics must map str to float"
            )
        if not math.isfinite(number):
            raise ContractError(
                f"trainer {spec!r} returned metric {key!r} = {number}, which is not finite"
            )
        metrics[key] = float(number)
    return metrics


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    entry_point = spec["entry_point"]
    try:
        function = load_entry_point(entry_point)
        result = function(spec["params"], spec["data"], spec["output_dir"])
        metrics = check_metrics(result, entry_point)
    except ContractError as exc:
        print(f"mlwf trainer contract error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    Path(spec["result_file"]).write_text(json.dumps(metrics), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
