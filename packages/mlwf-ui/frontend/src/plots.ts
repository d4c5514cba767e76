// What the tuning plots draw, as plain data: computed here (and unit-tested), handed to ECharts
// by Plots.tsx. Each builder returns an ECharts option.
import { formatValue } from "./format";
import type { Experiment, Hyperparameter, TuningDetail } from "./types";

type Option = Record<string, unknown>;

/** The experiments that have a value of the optimized metric, by index. */
export function measured(tuning: TuningDetail): Experiment[] {
  return tuning.experiments
    .filter((e) => Number.isFinite(e.metrics[tuning.metric]))
    .sort((a, b) => a.index - b.index);
}

/** The best value after each succeeded experiment, in index order: [index, best so far]. */
export function bestSoFar(tuning: TuningDetail): [number, number][] {
  const better = (a: number, b: number) => (tuning.direction === "minimize" ? a < b : a > b);
  const line: [number, number][] = [];
  let best: number | undefined;
  for (const e of measured(tuning)) {
    if (e.state !== "succeeded") continue;
    const value = e.metrics[tuning.metric];
    if (best === undefined || better(value, best)) best = value;
    line.push([e.index, best]);
  }
  return line;
}

/** Metric per experiment (a point each, by state) with the best-so-far line. */
export function historyOption(tuning: TuningDetail): Option {
  const points = measured(tuning);
  const states = Array.from(new Set(points.map((e) => e.state))).sort();
  return {
    animation: false,
    tooltip: { trigger: "item" },
    legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 40 },
    xAxis: { type: "value", name: "experiment", nameLocation: "middle", nameGap: 25, minInterval: 1 },
    yAxis: { type: "value", name: tuning.metric, scale: true },
    series: [
      ...states.map((state) => ({
        name: state,
        type: "scatter",
        symbolSize: 7,
        data: points.filter((e) => e.state === state).map((e) => [e.index, e.metrics[tuning.metric]]),
      })),
      { name: "best so far", type: "line", step: "end", symbol: "none", data: bestSoFar(tuning) },
    ],
  };
}

function axisFor(h: Hyperparameter, values: unknown[]): Option {
  if (h.kind === "categorical") {
    const seen = h.choices ?? Array.from(new Set(values));
    return { name: h.name, type: "category", data: seen.map((v) => String(v)) };
  }
  return { name: h.name, type: h.log ? "log" : "value", scale: true };
}

function coordinate(h: Hyperparameter, value: unknown): unknown {
  return h.kind === "categorical" ? String(value) : value;
}

/** Parallel coordinates: an axis per hyperparameter and one for the metric; a line per experiment. */
export function parallelOption(tuning: TuningDetail): Option {
  const points = measured(tuning);
  const params = tuning.hyperparameters;
  const axes = [
    ...params.map((h, dim) => ({ dim, ...axisFor(h, points.map((e) => e.params[h.name])) })),
    { dim: params.length, name: tuning.metric, type: "value", scale: true },
  ];
  const values = points.map((e) => e.metrics[tuning.metric]);
  return {
    animation: false,
    tooltip: { trigger: "item" },
    parallelAxis: axes,
    parallel: { left: 60, right: 120, top: 40, bottom: 30 },
    visualMap: {
      type: "continuous",
      dimension: params.length,
      min: Math.min(...values),
      max: Math.max(...values),
      inRange: { color: tuning.direction === "minimize" ? ["#1a9850", "#fee08b", "#d73027"] : ["#d73027", "#fee08b", "#1a9850"] },
      right: 0,
      top: "middle",
      calculable: true,
    },
    series: [
      {
        name: "experiments",
        type: "parallel",
        lineStyle: { width: 1.5, opacity: 0.6 },
        data: points.map((e) => [...params.map((h) => coordinate(h, e.params[h.name])), e.metrics[tuning.metric]]),
      },
    ],
  };
}

/** The metric against one hyperparameter (a point per experiment). */
export function sliceOption(tuning: TuningDetail, h: Hyperparameter): Option {
  const points = measured(tuning);
  const xAxis =
    h.kind === "categorical"
      ? { type: "category", name: h.name, data: (h.choices ?? []).map(String) }
      : { type: h.log ? "log" : "value", name: h.name, scale: true };
  return {
    animation: false,
    tooltip: { trigger: "item" },
    grid: { left: 60, right: 20, top: 30, bottom: 40 },
    xAxis: { ...xAxis, nameLocation: "middle", nameGap: 25 },
    yAxis: { type: "value", name: tuning.metric, scale: true },
    series: [
      {
        name: h.name,
        type: "scatter",
        symbolSize: 7,
        data: points.map((e) => [coordinate(h, e.params[h.name]), e.metrics[tuning.metric]]),
      },
    ],
  };
}

/** The gap between two curves in one line series (ECharts breaks a line at an empty value). */
export const GAP = "-";

/** A curve's point: step, value and the experiment's index (for the tooltip). */
type CurvePoint = [number, number, number];

function curvePoints(experiments: Experiment[]): (CurvePoint | typeof GAP)[] {
  const data: (CurvePoint | typeof GAP)[] = [];
  for (const e of experiments) {
    if (data.length > 0) data.push(GAP);
    for (const [step, value] of e.intermediate) data.push([step, value, e.index]);
  }
  return data;
}

/**
 * Intermediate values by step: a curve per experiment that reported any, the completed ones in
 * one line series and the pruned ones (dashed) in another, each curve apart from the next by a
 * gap; a marker where each pruned experiment was stopped. Two line series instead of one per
 * experiment: a thousand series cost ECharts a thousand models and views (benchmarks/ui).
 */
export function curvesOption(tuning: TuningDetail): Option {
  const reporting = tuning.experiments.filter((e) => e.intermediate.length > 0).sort((a, b) => a.index - b.index);
  const pruned = reporting.filter((e) => e.state === "pruned");
  const completed = reporting.filter((e) => e.state !== "pruned");
  const line = (name: string, color: string, dashed: boolean, experiments: Experiment[]) => ({
    name,
    type: "line",
    showSymbol: false,
    connectNulls: false,
    color,
    lineStyle: { type: dashed ? "dashed" : "solid", width: 1.5 },
    data: curvePoints(experiments),
  });
  return {
    animation: false,
    tooltip: {
      trigger: "item",
      formatter: (p: { data: CurvePoint }) => `experiment ${p.data[2]}, step ${p.data[0]}: ${formatValue(p.data[1])}`,
    },
    legend: { top: 0, data: ["completed", "pruned"] },
    grid: { left: 60, right: 20, top: 40, bottom: 40 },
    xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 25, minInterval: 1 },
    yAxis: { type: "value", name: tuning.metric, scale: true },
    series: [
      line("completed", "#3182ce", false, completed),
      line("pruned", "#dd6b20", true, pruned),
      // Where each pruned experiment was stopped (the same legend entry as its dashed curve).
      {
        name: "pruned",
        id: "stopped",
        type: "scatter",
        symbol: "pin",
        symbolSize: 24,
        color: "#dd6b20",
        label: { show: true, formatter: "✕", color: "#fff", fontSize: 10 },
        data: pruned.map((e) => [...e.intermediate[e.intermediate.length - 1], e.index]),
      },
    ],
  };
}
