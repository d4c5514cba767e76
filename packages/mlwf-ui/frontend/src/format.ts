import type { ExperimentState } from "./types";

export const STATE_COLORS: Record<ExperimentState, string> = {
  planned: "gray",
  running: "blue",
  succeeded: "green",
  failed: "red",
  pruned: "orange",
};

/** A metric or parameter value for a table cell: numbers to 4 significant digits. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e5 ? String(Number(value.toPrecision(4))) : value.toExponential(3);
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
