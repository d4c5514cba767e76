import { GAP, bestSoFar, curvesOption, historyOption, parallelOption, sliceOption } from "./plots";
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

test("intermediate curves: a curve per reporting experiment, pruned ones dashed and marked", () => {
  const reports = [
    ...EXPERIMENTS,
    experiment(6, { metrics: { loss: 0.4 }, intermediate: [[1, 0.7], [2, 0.5]] }),
    experiment(7, { state: "pruned", metrics: {}, intermediate: [[1, 0.95]] }),
  ];
  const series = curvesOption(tuning(reports)).series as (Series & { type: string; id?: string })[];
  expect(series.map((s) => [s.name, s.type])).toEqual([
    ["completed", "line"],
    ["pruned", "line"],
    ["pruned", "scatter"],
  ]);
  // Completed curves (experiments 5 and 6), each apart from the next by a gap, with the index.
  expect(series[0].data).toEqual([[1, 0.6, 5], [2, 0.4, 5], [3, 0.3, 5], GAP, [1, 0.7, 6], [2, 0.5, 6]]);
  expect(series[0].lineStyle?.type).toBe("solid");
  expect(series[1].data).toEqual([[1, 0.9, 4], [2, 0.8, 4], GAP, [1, 0.95, 7]]);
  expect(series[1].lineStyle?.type).toBe("dashed");
  // A marker where each pruned experiment stopped.
  expect(series[2].data).toEqual([[2, 0.8, 4], [1, 0.95, 7]]);
  const tooltip = curvesOption(tuning(reports)).tooltip as { formatter: (p: { data: number[] }) => string };
  expect(tooltip.formatter({ data: [2, 0.81234, 4] })).toBe("experiment 4, step 2: 0.8123");
});
