import { bestSoFar, curvesOption, historyOption, parallelOption, sliceOption } from "./plots";
import { experiment, tuning } from "./test/fixtures";

const EXPERIMENTS = [
  experiment(0, { metrics: { loss: 0.5 } }),
  experiment(1, { metrics: { loss: 0.7 } }),
  experiment(2, { state: "failed", metrics: {} }),
  experiment(3, { metrics: { loss: 0.2 } }),
  experiment(4, { state: "pruned", metrics: { loss: 0.1 }, intermediate: [[1, 0.9], [2, 0.8]] }),
  experiment(5, { metrics: { loss: 0.3 }, intermediate: [[1, 0.6], [2, 0.4], [3, 0.3]] }),
];

type Series = { name: string; data: unknown[]; lineStyle?: { type: string }; markPoint?: unknown };

test("best so far follows the direction and counts succeeded experiments only", () => {
  expect(bestSoFar(tuning(EXPERIMENTS))).toEqual([
    [0, 0.5],
    [1, 0.5],
    [3, 0.2],
    [5, 0.2],
  ]);
  expect(bestSoFar(tuning(EXPERIMENTS, { direction: "maximize" }))).toEqual([
    [0, 0.5],
    [1, 0.7],
    [3, 0.7],
    [5, 0.7],
  ]);
});

test("the history draws every measured experiment by state, and the best-so-far line", () => {
  const series = historyOption(tuning(EXPERIMENTS)).series as Series[];
  expect(series.map((s) => s.name)).toEqual(["pruned", "succeeded", "best so far"]);
  expect(series[0].data).toEqual([[4, 0.1]]);
  expect(series[1].data).toEqual([
    [0, 0.5],
    [1, 0.7],
    [3, 0.2],
    [5, 0.3],
  ]);
});

test("parallel coordinates: an axis per hyperparameter, then the metric; a line per experiment", () => {
  const option = parallelOption(tuning(EXPERIMENTS));
  const axes = option.parallelAxis as { name: string; type: string; data?: string[] }[];
  expect(axes.map((a) => [a.name, a.type])).toEqual([
    ["kernel", "category"],
    ["lr", "log"],
    ["loss", "value"],
  ]);
  expect(axes[0].data).toEqual(["linear", "rbf"]);
  const lines = (option.series as Series[])[0].data;
  expect(lines).toHaveLength(5);
  expect(lines[0]).toEqual(["linear", 0.01, 0.5]);
});

test("a slice puts the hyperparameter on x and the metric on y", () => {
  const t = tuning(EXPERIMENTS);
  const lr = sliceOption(t, t.hyperparameters[1]);
  expect((lr.xAxis as { type: string }).type).toBe("log");
  expect((lr.series as Series[])[0].data).toContainEqual([0.04, 0.2]);
});

test("intermediate curves: one per reporting experiment, pruned ones dashed and marked", () => {
  const series = curvesOption(tuning(EXPERIMENTS)).series as Series[];
  expect(series.map((s) => s.name)).toEqual(["pruned", "completed"]);
  expect(series[0].data).toEqual([
    [1, 0.9],
    [2, 0.8],
  ]);
  expect(series[0].lineStyle?.type).toBe("dashed");
  expect(series[0].markPoint).toBeDefined();
  expect(series[1].lineStyle?.type).toBe("solid");
  expect(series[1].markPoint).toBeUndefined();
});
