"""Planning: rebuild an in-memory Optuna study from the records, then ask it for the next experiments.

No study storage service is needed: the records are the state. Every plan is a pure function of
the spec and the records, so a resumed tuning plans exactly what an uninterrupted one would. A
method with ``fast_forward`` (TPE) gets a sampler seeded with the spec's seed and moved past
what the recorded experiments drew: it draws what one sampler kept for the whole tuning would.
Any other adaptive method gets a sampler seeded from the spec's seed and the number of
experiments recorded so far (``round_seed``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlwf_tuning._records import ExperimentRecord, ExperimentState
from mlwf_tuning._spec import HyperparameterTuningSpec, resolve_method

if (
    TYPE_CHECKING
):  # optuna is imported when planning only: DAG files that declare tunings parse fast
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import TrialState


def _trial_state(state: ExperimentState) -> TrialState:
    from optuna.trial import TrialState

    return {
        ExperimentState.PLANNED: TrialState.RUNNING,
        ExperimentState.RUNNING: TrialState.RUNNING,
        ExperimentState.SUCCEEDED: TrialState.COMPLETE,
        ExperimentState.FAILED: TrialState.FAIL,
        ExperimentState.PRUNED: TrialState.PRUNED,
    }[state]


def round_seed(seed: int, n_recorded: int) -> int:
    """Return the sampler seed of the round that starts after ``n_recorded`` experiments."""
    digest = hashlib.sha256(f"mlwf-tuning:{seed}:{n_recorded}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def stream_seed(seed: int) -> int:
    """Return the seed of a fast-forwarded method's one random stream.

    The spec's seed itself, so that the stream is the one of Optuna's sampler with that seed,
    unless NumPy refuses it (negative, or 2**32 and above): then one derived from it.
    """
    return seed if 0 <= seed < 2**32 else round_seed(seed, 0)


def distributions(spec: HyperparameterTuningSpec) -> dict[str, BaseDistribution]:
    """Return the Optuna distribution of every hyperparameter."""
    return {name: hp.distribution() for name, hp in spec.hyperparameters.items()}


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    # A study is rebuilt every round; its "new study created" INFO line would flood the task log.
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def rebuild_study(
    spec: HyperparameterTuningSpec,
    records: Sequence[ExperimentRecord],
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Return an in-memory study holding every recorded experiment as a trial.

    Succeeded experiments become complete trials, failed ones failed trials, pruned ones pruned
    trials with their intermediate values, and planned or running ones running trials (so that
    grid and constant-liar samplers steer away from them).
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    dists = distributions(spec)
    with _quiet_optuna():
        study = optuna.create_study(direction=spec.direction, sampler=sampler)
    for record in records:
        state = _trial_state(record.state)
        value = record.metrics.get(spec.metric) if state == TrialState.COMPLETE else None
        study.add_trial(
            create_trial(
                params=dict(record.params),
                distributions=dists,
                value=value,
                state=state,
                intermediate_values=dict(record.intermediate),
            )
        )
    return study


def _ask(study: optuna.Study, dists: dict[str, BaseDistribution], n: int) -> list[dict[str, Any]]:
    return [study.ask(fixed_distributions=dists).params for _ in range(n)]


def plan(
    spec: HyperparameterTuningSpec, records: Sequence[ExperimentRecord]
) -> list[ExperimentRecord]:
    """Return the experiments to record next (state planned), given every experiment recorded so far.

    Up-front methods (grid, random) return the whole remaining plan; adaptive ones (Bayesian) one
    round of at most ``parallelism`` experiments, conditioned on every result recorded so far.
    Returns an empty list when the tuning has planned all of its experiments.
    """
    total = spec.total_experiments()
    recorded = {r.index for r in records}
    method = resolve_method(spec.method)
    dists = distributions(spec)
    if method.plans_upfront:
        # The whole plan is one fixed draw: replaying it fills any gap deterministically.
        study = rebuild_study(spec, [], method.make_sampler(spec, round_seed(spec.seed, 0)))
        every = _ask(study, dists, total)
        return [ExperimentRecord(i, p) for i, p in enumerate(every) if i not in recorded]
    n = min(spec.parallelism, total - len(records))
    if n <= 0:
        return []
    if method.fast_forward is not None:
        sampler = method.make_sampler(spec, stream_seed(spec.seed))
        method.fast_forward(sampler, spec, records)
    else:
        sampler = method.make_sampler(spec, round_seed(spec.seed, len(records)))
    study = rebuild_study(spec, records, sampler)
    start = max(recorded, default=-1) + 1
    return [ExperimentRecord(start + i, p) for i, p in enumerate(_ask(study, dists, n))]
