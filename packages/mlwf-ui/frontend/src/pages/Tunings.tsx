import { Badge, Button, HStack, Heading, Link, Spinner, Stack, Table, Text } from "@chakra-ui/react";
import { useState } from "react";

import { appUrl } from "../api";
import { STATE_COLORS, formatValue } from "../format";
import { TuningForm } from "../TuningForm";
import type { ConstructorInfo, ExperimentState, TuningList } from "../types";
import { usePolling } from "../usePolling";

/** How often the list is read again. */
export const LIST_REFRESH_MS = 10000;
const PAGE = 50; // the API's largest page

/** The tunings the user may read, newest first, with their progress and best value. */
export function TuningsView() {
  const [creating, setCreating] = useState(false);
  const [message, setMessage] = useState("");
  const { data, error, loading } = usePolling<TuningList>(`mlwf/tuning/tunings?limit=${PAGE}`, () => LIST_REFRESH_MS);
  const constructors = usePolling<{ constructors: ConstructorInfo[] }>(creating ? "mlwf/constructors/constructors" : null, () => null);
  if (error && !data) return <Text color="fg.error">Could not load the tunings: {error.message}</Text>;
  if (loading || !data) return <Spinner />;
  return (
    <Stack gap={3} p={2}>
      <HStack>
        <Heading size="md">Tunings</Heading>
        <Button size="xs" onClick={() => setCreating(true)}>
          Create a tuning
        </Button>
      </HStack>
      {message && <Text data-testid="message">{message}</Text>}
      {creating &&
        (constructors.error ? (
          <Text color="fg.error">Could not load the constructors: {constructors.error.message}</Text>
        ) : !constructors.data ? (
          <Spinner />
        ) : (
          <TuningForm
            constructors={constructors.data.constructors}
            onCancel={() => setCreating(false)}
            onCreated={(created) => {
              setCreating(false);
              setMessage(`Created the tuning DAG ${created.instance_id}: trigger it once Airflow has parsed it.`);
            }}
          />
        ))}
      <Text fontSize="sm">
        {data.total_entries === 0
          ? "No tunings yet. Create one from the Constructors page (constructor hyperparameter_tuning)."
          : `${data.total_entries} tunings${data.total_entries > PAGE ? `, the newest ${PAGE} shown` : ""}`}
      </Text>
      {data.tunings.length > 0 && (
        <Table.Root size="sm" variant="outline" data-testid="tunings">
          <Table.Header>
            <Table.Row>
              {["DAG", "run", "method", "metric", "experiments", "best"].map((h) => (
                <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
              ))}
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {data.tunings.map((t) => (
              <Table.Row key={t.tuning_id}>
                <Table.Cell>
                  <Link href={appUrl(`dags/${encodeURIComponent(t.dag_id)}`)}>{t.dag_id}</Link>
                </Table.Cell>
                <Table.Cell>
                  {t.run_id === null ? (
                    t.tuning_id
                  ) : (
                    <Link href={appUrl(`dags/${encodeURIComponent(t.dag_id)}/runs/${encodeURIComponent(t.run_id)}/plugin/mlwf-tuning`)}>
                      {t.run_id}
                    </Link>
                  )}
                </Table.Cell>
                <Table.Cell>{t.method}</Table.Cell>
                <Table.Cell>
                  {t.direction} {t.metric}
                </Table.Cell>
                <Table.Cell>
                  <HStack gap={1}>
                    {(Object.entries(t.states) as [ExperimentState, number][]).map(([state, n]) => (
                      <Badge key={state} colorPalette={STATE_COLORS[state]}>
                        {n} {state}
                      </Badge>
                    ))}
                  </HStack>
                </Table.Cell>
                <Table.Cell>
                  {t.best_index === null ? "" : `${formatValue(t.best_value)} (#${t.best_index})`}
                  {t.problem && (
                    <Text color="fg.error" fontSize="xs">
                      {t.problem}
                    </Text>
                  )}
                </Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Stack>
  );
}
