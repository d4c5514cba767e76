import { type TuningChoices, tunableParameters, tuningValues } from "./specBuilder";
import type { ConstructorInfo } from "./types";

const WORKFLOW: ConstructorInfo = {
  name: "train_evaluate_workflow",
  version: "1",
  description: "",
  source: "",
  schema: {
    type: "object",
    properties: {
      dataset: { enum: ["iris", "wine"], default: "iris" },
      C: { type: "number", minimum: 0, default: 1 },
      max_iter: { type: "integer", minimum: 1, default: 100 },
      label: { type: "string", default: "" },
    },
  },
};

function choices(changes: Partial<TuningChoices> = {}): TuningChoices {
  return {
    target: "train_evaluate_workflow",
    metric: "log_loss",
    direction: "minimize",
    method: "tpe",
    nExperiments: "6",
    parallelism: "2",
    baseConf: '{"dataset": "iris"}',
    parameters: { C: { tune: true, low: "0.001", high: "100", log: true } },
    ...changes,
  };
}

test("numbers and enums can be tuned; strings keep their value", () => {
  expect(tunableParameters(WORKFLOW).map((p) => [p.name, p.kind])).toEqual([
    ["dataset", "categorical"],
    ["C", "float"],
    ["max_iter", "int"],
  ]);
});

test("the spec is built from the choices", () => {
  const built = tuningValues(tunableParameters(WORKFLOW), choices());
  expect(built).toEqual({
    values: {
      constructor: "train_evaluate_workflow",
      spec: JSON.stringify({
        hyperparameters: { C: { kind: "float", low: 0.001, high: 100, log: true } },
        metric: "log_loss",
        direction: "minimize",
        method: "tpe",
        parallelism: 2,
        n_experiments: 6,
      }),
      base_conf: '{"dataset": "iris"}',
    },
  });
});

test("every mistake is named at once", () => {
  const built = tuningValues(
    tunableParameters(WORKFLOW),
    choices({
      metric: " ",
      nExperiments: "0",
      baseConf: "[1]",
      parameters: {
        C: { tune: true, low: "-1", high: "5", log: false },
        max_iter: { tune: true, low: "10", high: "5", log: false },
      },
    }),
  );
  expect(built).toEqual({
    errors: {
      C: "the parameter allows 0 to ∞",
      max_iter: "low must be below high",
      metric: "name the metric the experiments report",
      n_experiments: "a whole number ≥ 1",
      base_conf: "a JSON object",
    },
  });
  expect(tuningValues(tunableParameters(WORKFLOW), choices({ parameters: {} }))).toEqual({
    errors: { spec: "choose at least one parameter to tune" },
  });
});
