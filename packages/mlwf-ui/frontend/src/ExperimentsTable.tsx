import { Badge, Box, Button, HStack, Table, Text } from "@chakra-ui/react";
import { memo, useMemo, useState } from "react";

import { STATE_COLORS, formatDuration, formatValue } from "./format";
import type { Experiment, ExperimentState } from "./types";

type Column = { key: string; label: string; value: (e: Experiment) => unknown };

/**
 * Rows per page, and the default. Sorting and filtering apply to every experiment; a page shows
 * a slice of the result (a thousand rows of cells would cost a second to draw and to re-sort;
 * docs/mlwf-ui).
 */
export const PAGE_SIZES = [25, 50, 100, 250] as const;
export const DEFAULT_PAGE_SIZE = 50;

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
 * One row. Memoized: a new order, filter or page reuses the rows React already has instead of
 * rendering every row of Chakra cells again (benchmarks/ui measures it).
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

/** Every experiment, a page at a time: sortable by any column (click its header), filterable by state. */
export function ExperimentsTable({ experiments, params, metrics, bestIndex }: ExperimentsTableProps) {
  const [sort, setSort] = useState<{ key: string; descending: boolean }>({ key: "index", descending: false });
  const [state, setState] = useState<ExperimentState | "all">("all");
  const [pageSize, setPageSize] = useState<number>(DEFAULT_PAGE_SIZE);
  const [page, setPage] = useState(0);
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
  const pages = Math.max(1, Math.ceil(rows.length / pageSize));
  // A refresh may shorten the list (a filter, fewer rows): stay on the last page that exists.
  const shown = Math.min(page, pages - 1);
  const first = shown * pageSize;
  const visible = rows.slice(first, first + pageSize);
  // A new order, filter or page size starts again at the first page.
  const sortBy = (key: string) => {
    setSort({ key, descending: sort.key === key ? !sort.descending : false });
    setPage(0);
  };

  return (
    <Box>
      <HStack gap={3} mb={2}>
        <Text fontSize="sm" data-testid="experiments-count">
          {rows.length} of {experiments.length} experiments
        </Text>
        <label>
          <Text as="span" fontSize="sm" mr={1}>
            state
          </Text>
          <select
            aria-label="filter by state"
            value={state}
            onChange={(e) => {
              setState(e.target.value as ExperimentState | "all");
              setPage(0);
            }}
          >
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
                onClick={() => sortBy(c.key)}
              >
                {c.label}
                {sort.key === c.key ? (sort.descending ? " ▼" : " ▲") : ""}
              </Table.ColumnHeader>
            ))}
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {visible.map((e) => (
            <ExperimentRow key={e.index} experiment={e} columns={columns} best={e.index === bestIndex} />
          ))}
        </Table.Body>
      </Table.Root>
      <HStack gap={3} mt={2} data-testid="experiments-pages">
        <Button size="xs" variant="outline" disabled={shown === 0} onClick={() => setPage(shown - 1)}>
          Previous
        </Button>
        <Text fontSize="sm">
          {rows.length === 0 ? "no rows" : `rows ${first + 1}–${first + visible.length}, page ${shown + 1} of ${pages}`}
        </Text>
        <Button size="xs" variant="outline" disabled={shown >= pages - 1} onClick={() => setPage(shown + 1)}>
          Next
        </Button>
        <label>
          <Text as="span" fontSize="sm" mr={1}>
            rows per page
          </Text>
          <select
            aria-label="rows per page"
            value={pageSize}
            onChange={(e) => {
              setPageSize(Number(e.target.value));
              setPage(0);
            }}
          >
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </HStack>
    </Box>
  );
}
