// The "create a tuning" form's logic: which parameters of a constructor can be tuned, and the
// values of a `hyperparameter_tuning` instance (its spec as JSON) built from the choices.
import { fieldsOf } from "./schemaForm";
import type { ConstructorInfo } from "./types";

export interface TunableParameter {
  name: string;
  kind: "float" | "int" | "categorical";
  description: string;
  choices: unknown[];
  minimum: number | undefined;
  maximum: number | undefined;
}

export interface Choice {
  tune: boolean;
  low: string;
  high: string;
  log: boolean;
}

export interface TuningChoices {
  target: string;
  metric: string;
  direction: "minimize" | "maximize";
  method: string;
  nExperiments: string;
  parallelism: string;
  baseConf: string;
  parameters: Record<string, Choice>;
}

/** The parameters a tuning can vary: numbers and enums (the rest keep their values). */
export function tunableParameters(info: ConstructorInfo): TunableParameter[] {
  return fieldsOf(info.schema).flatMap((f): TunableParameter[] => {
    const kind = f.kind === "number" ? "float" : f.kind === "integer" ? "int" : f.kind === "enum" ? "categorical" : null;
    if (kind === null) return [];
    const num = (v: unknown) => (typeof v === "number" ? v : undefined);
    return [
      {
        name: f.name,
        kind,
        description: f.description,
        choices: f.choices,
        minimum: num(f.schema.minimum),
        maximum: num(f.schema.maximum),
      },
    ];
  });
}

/** The values of the tuning instance, or the errors by field ("spec" for the whole spec). */
export function tuningValues(
  parameters: TunableParameter[],
  choices: TuningChoices,
): { values: Record<string, unknown> } | { errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const space: Record<string, unknown> = {};
  for (const p of parameters) {
    const c = choices.parameters[p.name];
    if (!c?.tune) continue;
    if (p.kind === "categorical") {
      space[p.name] = { kind: "categorical", choices: p.choices };
      continue;
    }
    const low = Number(c.low);
    const high = Number(c.high);
    if (c.low.trim() === "" || c.high.trim() === "" || !Number.isFinite(low) || !Number.isFinite(high)) {
      errors[p.name] = "give a numeric low and high";
    } else if (!(low < high)) {
      errors[p.name] = "low must be below high";
    } else if (p.kind === "int" && !(Number.isInteger(low) && Number.isInteger(high))) {
      errors[p.name] = "low and high must be whole numbers";
    } else if (c.log && low <= 0) {
      errors[p.name] = "a log scale needs low > 0";
    } else if ((p.minimum !== undefined && low < p.minimum) || (p.maximum !== undefined && high > p.maximum)) {
      errors[p.name] = `the parameter allows ${p.minimum ?? "-∞"} to ${p.maximum ?? "∞"}`;
    } else {
      space[p.name] = { kind: p.kind, low, high, log: c.log };
    }
  }
  if (Object.keys(space).length === 0 && Object.keys(errors).length === 0) errors.spec = "choose at least one parameter to tune";
  if (choices.metric.trim() === "") errors.metric = "name the metric the experiments report";
  const n = Number(choices.nExperiments);
  if (choices.nExperiments.trim() !== "" && !(Number.isInteger(n) && n >= 1)) errors.n_experiments = "a whole number ≥ 1";
  if (choices.nExperiments.trim() === "" && choices.method !== "grid") errors.n_experiments = "needed unless the method is grid";
  const parallel = Number(choices.parallelism);
  if (!(Number.isInteger(parallel) && parallel >= 1)) errors.parallelism = "a whole number ≥ 1";
  try {
    const conf = JSON.parse(choices.baseConf || "{}") as unknown;
    if (typeof conf !== "object" || conf === null || Array.isArray(conf)) errors.base_conf = "a JSON object";
  } catch {
    errors.base_conf = "not valid JSON";
  }
  if (Object.keys(errors).length > 0) return { errors };
  const spec: Record<string, unknown> = {
    hyperparameters: space,
    metric: choices.metric.trim(),
    direction: choices.direction,
    method: choices.method,
    parallelism: parallel,
  };
  if (choices.nExperiments.trim() !== "") spec.n_experiments = n;
  return {
    values: { constructor: choices.target, spec: JSON.stringify(spec), base_conf: choices.baseConf.trim() || "{}" },
  };
}
