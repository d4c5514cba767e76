import { Badge, Heading, Link, Spinner, Stack, Table, Text } from "@chakra-ui/react";

import { appUrl } from "../api";
import type { ConstructorInfo, InstanceInfo } from "../types";
import { usePolling } from "../usePolling";

/** The registered constructors and the instances the user may see. */
export function ConstructorsView() {
  const constructors = usePolling<{ constructors: ConstructorInfo[] }>("mlwf/constructors/constructors", () => null);
  const instances = usePolling<{ instances: InstanceInfo[] }>("mlwf/constructors/instances", () => null);
  const error = constructors.error ?? instances.error;
  if (error) return <Text color="fg.error">Could not load the constructors: {error.message}</Text>;
  if (!constructors.data || !instances.data) return <Spinner />;
  return (
    <Stack gap={4} p={2}>
      <Heading size="md">Constructors</Heading>
      <Table.Root size="sm" variant="outline" data-testid="constructors">
        <Table.Header>
          <Table.Row>
            {["name", "version", "description"].map((h) => (
              <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
            ))}
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {constructors.data.constructors.map((c) => (
            <Table.Row key={c.name}>
              <Table.Cell>{c.name}</Table.Cell>
              <Table.Cell>{c.version}</Table.Cell>
              <Table.Cell>{c.description}</Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
      <Heading size="sm">Instances</Heading>
      {instances.data.instances.length === 0 ? (
        <Text>No instances you may see yet.</Text>
      ) : (
        <Table.Root size="sm" variant="outline" data-testid="instances">
          <Table.Header>
            <Table.Row>
              {["instance (its DAG)", "constructor", "owner", "enabled", "updated"].map((h) => (
                <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
              ))}
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {instances.data.instances.map((i) => (
              <Table.Row key={i.instance_id}>
                <Table.Cell>
                  <Link href={appUrl(`dags/${encodeURIComponent(i.instance_id)}`)}>{i.instance_id}</Link>
                </Table.Cell>
                <Table.Cell>
                  {i.constructor} {i.constructor_version}
                </Table.Cell>
                <Table.Cell>{[i.owner, ...i.owner_groups].filter(Boolean).join(", ")}</Table.Cell>
                <Table.Cell>
                  <Badge colorPalette={i.enabled ? "green" : "gray"}>{i.enabled ? "enabled" : "disabled"}</Badge>
                </Table.Cell>
                <Table.Cell>{new Date(i.updated_at).toLocaleString()}</Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Stack>
  );
}
