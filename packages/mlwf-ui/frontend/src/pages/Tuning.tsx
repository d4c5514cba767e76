import { Badge, Box, HStack, Heading, Spinner, Stack, Text } from "@chakra-ui/react";

import { ApiError } from "../api";
import { ExperimentsTable } from "../ExperimentsTable";
import { formatValue } from "../format";
import { Plots } from "../Plots";
import type { TuningDetail } from "../types";
import { usePolling } from "../usePolling";

/** How often a tuning still running is read again. */
export const REFRESH_MS = 5000;

export interface TuningProps {
  dagId?: string;
  runId?: string;
}

/** Whether the tuning's DAG run is still going (a stopped tuning may keep planned experiments). */
export function running(tuning: TuningDetail): boolean {
  return tuning.run_state === "queued" || tuning.run_state === "running";
}

/** "." and ".." are valid ids, but a URL would read them as path steps, not as a name. */
function usable(id: string | undefined): id is string {
  return Boolean(id) && id !== "." && id !== "..";
}

/** A tuning DAG run's results: the best experiment and every experiment; refreshed while it runs. */
export function TuningView({ dagId, runId }: TuningProps) {
  const path =
    usable(dagId) && usable(runId) ? `mlwf/tuning/tunings/${encodeURIComponent(dagId)}/${encodeURIComponent(runId)}` : null;
  const { data: tuning, error, loading } = usePolling<TuningDetail>(path, (t) => (running(t) ? REFRESH_MS : null));
  if (path === null || (error instanceof ApiError && error.status === 404 && !tuning)) {
    return <Text data-testid="not-a-tuning">This run is not a tuning, or you may not read its results.</Text>;
  }
  if (error && !tuning) return <Text color="fg.error">Could not load the tuning: {error.message}</Text>;
  if (loading || !tuning) return <Spinner />;
  const params = tuning.hyperparameters.map((h) => h.name);
  const metrics = Array.from(new Set(tuning.experiments.flatMap((e) => Object.keys(e.metrics)))).sort((a, b) =>
    a === tuning.metric ? -1 : b === tuning.metric ? 1 : a.localeCompare(b),
  );
  const best = tuning.experiments.find((e) => e.index === tuning.best_index);
  return (
    <Stack gap={4} p={2}>
      <HStack gap={3} wrap="wrap">
        <Heading size="md">Tuning</Heading>
        <Badge>{tuning.method}</Badge>
        <Text>
          {tuning.direction} {tuning.metric}
        </Text>
        {running(tuning) && <Badge colorPalette="blue">running</Badge>}
        {error && <Text color="fg.error">refresh failed: {error.message}</Text>}
      </HStack>
      {tuning.problem && <Text color="fg.error">Not everything stored could be read: {tuning.problem}</Text>}
      <Box data-testid="best">
        {best ? (
          <Text>
            Best: experiment {best.index}, {tuning.metric} = {formatValue(tuning.best_value)} with{" "}
            {params.map((p) => `${p} = ${formatValue(best.params[p])}`).join(", ")}
          </Text>
        ) : (
          <Text>No experiment has succeeded yet.</Text>
        )}
      </Box>
      <Plots tuning={tuning} />
      <ExperimentsTable experiments={tuning.experiments} params={params} metrics={metrics} bestIndex={tuning.best_index} />
    </Stack>
  );
}
