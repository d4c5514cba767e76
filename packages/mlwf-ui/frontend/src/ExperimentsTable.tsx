import { Badge, Box, HStack, Table, Text } from "@chakra-ui/react";
import { memo, useMemo, useState } from "react";

import { STATE_COLORS, formatDuration, formatValue } from "./format";
import type { Experiment, ExperimentState } from "./types";

type Column = { key: string; label: string; value: (e: Experiment) => unknown };

export interface ExperimentsTableProps {
  experiments: Experiment[];
  params: string[];
  metrics: string[];
  bestIndex: number | null;
}

function compare(a: unknown, b: unknown): number {
  // Empty cells sort last whichever the direction; numbers before text (a total order even when
  // a column mixes them); numbers as numbers, the rest as text.
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : 1;
  if (b === undefined || b === null) return -1;
  const aNumber = typeof a === "number";
  if (aNumber !== (typeof b === "number")) return aNumber ? -1 : 1;
  if (aNumber) return (a as number) - (b as number);
  return String(a).localeCompare(String(b));
}

/**
 * One row. Memoized: a new order or filter moves the rows React already has instead of
 * rendering 1,000 rows of Chakra cells again (benchmarks/ui measures it).
 */
const ExperimentRow = memo(function ExperimentRow({
  experiment: e,
  columns,
  best,
}: {
  experiment: Experiment;
  columns: Column[];
  best: boolean;
}) {
  return (
    <Table.Row data-index={e.index} fontWeight={best ? "bold" : undefined}>
      {columns.map((c) => (
        <Table.Cell key={c.key}>
          {c.key === "state" ? (
            <Badge colorPalette={STATE_COLORS[e.state]}>{e.state}</Badge>
          ) : c.key === "duration" ? (
            formatDuration(e.duration_s)
          ) : c.key === "index" && best ? (
            `${e.index} ★`
          ) : (
            formatValue(c.value(e))
          )}
        </Table.Cell>
      ))}
    </Table.Row>
  );
});

/** Every experiment: sortable by any column (click its header), filterable by state. */
export function ExperimentsTable({ experiments, params, metrics, bestIndex }: ExperimentsTableProps) {
  const [sort, setSort] = useState<{ key: string; descending: boolean }>({ key: "index", descending: false });
  const [state, setState] = useState<ExperimentState | "all">("all");
  const columns: Column[] = useMemo(
    () => [
      { key: "index", label: "#", value: (e) => e.index },
      { key: "state", label: "state", value: (e) => e.state },
      ...params.map((p) => ({ key: `param:${p}`, label: p, value: (e: Experiment) => e.params[p] })),
      ...metrics.map((m) => ({ key: `metric:${m}`, label: m, value: (e: Experiment) => e.metrics[m] })),
      { key: "duration", label: "duration", value: (e) => e.duration_s },
      { key: "error", label: "error", value: (e) => e.error },
    ],
    [params, metrics],
  );
  const rows = useMemo(() => {
    const column = columns.find((c) => c.key === sort.key) ?? columns[0];
    const kept = experiments.filter((e) => state === "all" || e.state === state);
    const sorted = [...kept].sort((a, b) => compare(column.value(a), column.value(b)));
    if (sort.descending) {
      // Reverse the filled cells only: empty ones stay last.
      const filled = sorted.filter((e) => column.value(e) !== undefined && column.value(e) !== null);
      return [...filled.reverse(), ...sorted.slice(filled.length)];
    }
    return sorted;
  }, [experiments, columns, sort, state]);
  const states = Array.from(new Set(experiments.map((e) => e.state))).sort();

  return (
    <Box>
      <HStack gap={3} mb={2}>
        <Text fontSize="sm">
          {rows.length} of {experiments.length} experiments
        </Text>
        <label>
          <Text as="span" fontSize="sm" mr={1}>
            state
          </Text>
          <select aria-label="filter by state" value={state} onChange={(e) => setState(e.target.value as ExperimentState | "all")}>
            <option value="all">all</option>
            {states.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </HStack>
      <Table.Root size="sm" variant="outline" data-testid="experiments">
        <Table.Header>
          <Table.Row>
            {columns.map((c) => (
              <Table.ColumnHeader
                key={c.key}
                cursor="pointer"
                aria-sort={sort.key === c.key ? (sort.descending ? "descending" : "ascending") : "none"}
                onClick={() => setSort({ key: c.key, descending: sort.key === c.key ? !sort.descending : false })}
              >
                {c.label}
                {sort.key === c.key ? (sort.descending ? " ▼" : " ▲") : ""}
              </Table.ColumnHeader>
            ))}
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {rows.map((e) => (
            <ExperimentRow key={e.index} experiment={e} columns={columns} best={e.index === bestIndex} />
          ))}
        </Table.Body>
      </Table.Root>
    </Box>
  );
}
