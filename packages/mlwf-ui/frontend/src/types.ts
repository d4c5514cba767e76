// The JSON the pages read: mlwf-tuning's and mlwf-constructors' response models (their OpenAPI).

export type ExperimentState = "planned" | "running" | "succeeded" | "failed" | "pruned";

export interface TuningSummary {
  tuning_id: string;
  dag_id: string;
  run_id: string | null;
  created: string;
  metric: string;
  direction: "minimize" | "maximize";
  method: string;
  n_experiments: number | null;
  states: Partial<Record<ExperimentState, number>>;
  best_index: number | null;
  best_value: number | null;
  /** The tuning DAG run's state (queued, running, success, failed); null: the run is gone. */
  run_state: string | null;
  /** Set when stored records could not be read (the rest is shown). */
  problem: string | null;
}

export interface TuningList {
  tunings: TuningSummary[];
  total_entries: number;
}

export interface Hyperparameter {
  name: string;
  kind: "float" | "int" | "categorical";
  low: number | null;
  high: number | null;
  log: boolean;
  step: number | null;
  choices: unknown[] | null;
}

export interface Experiment {
  index: number;
  params: Record<string, unknown>;
  state: ExperimentState;
  metrics: Record<string, number>;
  intermediate: [number, number][];
  started: string | null;
  finished: string | null;
  duration_s: number | null;
  error: string | null;
}

export interface TuningDetail extends TuningSummary {
  hyperparameters: Hyperparameter[];
  experiments: Experiment[];
}

export interface ConstructorInfo {
  name: string;
  version: string;
  description: string;
  source: string;
  schema: Record<string, unknown>;
}

export interface InstanceInfo {
  instance_id: string;
  constructor: string;
  constructor_version: string;
  values: Record<string, unknown>;
  owner: string | null;
  owner_groups: string[];
  enabled: boolean;
  created_at: string;
  updated_at: string;
}
