import type { Experiment, TuningDetail } from "../types";

export function experiment(index: number, changes: Partial<Experiment> = {}): Experiment {
  return {
    index,
    params: { lr: 0.01 * (index + 1), kernel: index % 2 ? "rbf" : "linear" },
    state: "succeeded",
    metrics: { loss: 1 / (index + 1) },
    intermediate: [],
    started: "2026-12-01T12:00:00Z",
    finished: "2026-12-01T12:00:30Z",
    duration_s: 30,
    error: null,
    ...changes,
  };
}

export function tuning(experiments: Experiment[], changes: Partial<TuningDetail> = {}): TuningDetail {
  return {
    tuning_id: "tune/manual__1",
    dag_id: "tune",
    run_id: "manual__1",
    created: "2026-12-01T12:00:00Z",
    metric: "loss",
    direction: "minimize",
    method: "tpe",
    n_experiments: experiments.length,
    states: { succeeded: experiments.length },
    best_index: null,
    best_value: null,
    run_state: "success",
    problem: null,
    hyperparameters: [
      { name: "kernel", kind: "categorical", low: null, high: null, log: false, step: null, choices: ["linear", "rbf"] },
      { name: "lr", kind: "float", low: 0.001, high: 1, log: true, step: null, choices: null },
    ],
    experiments,
    ...changes,
  };
}
