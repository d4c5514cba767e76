// The bundle Airflow's UI imports: it registers one component per page under the React app's
// name (packages/mlwf-ui/src/mlwf_ui/_plugin.py, REACT_APPS), which the UI renders with the
// route's dagId and runId.
import { ConstructorsView } from "./pages/Constructors";
import { TuningView } from "./pages/Tuning";
import { TuningsView } from "./pages/Tunings";

export const PAGES = {
  Constructors: ConstructorsView,
  Tunings: TuningsView,
  Tuning: TuningView,
} as const;

for (const [name, component] of Object.entries(PAGES)) {
  Reflect.set(globalThis, name, component);
}
