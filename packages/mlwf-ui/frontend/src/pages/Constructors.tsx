import { Badge, Button, HStack, Heading, Link, Spinner, Stack, Table, Text } from "@chakra-ui/react";
import { useState } from "react";

import { ApiError, appUrl, sendJson } from "../api";
import { InstanceForm } from "../InstanceForm";
import type { ConstructorInfo, InstanceInfo } from "../types";
import { usePolling } from "../usePolling";

type Editing = { constructorInfo: ConstructorInfo; instance?: InstanceInfo } | null;

/** The registered constructors, and the instances the user may see: create, edit, enable, delete. */
export function ConstructorsView() {
  const [reload, setReload] = useState(0);
  const [editing, setEditing] = useState<Editing>(null);
  const [message, setMessage] = useState("");
  const constructors = usePolling<{ constructors: ConstructorInfo[] }>("mlwf/constructors/constructors", () => null);
  const instances = usePolling<{ instances: InstanceInfo[] }>("mlwf/constructors/instances", () => null, reload);
  const error = constructors.error ?? instances.error;
  if (error && (!constructors.data || !instances.data)) {
    return <Text color="fg.error">Could not load the constructors: {error.message}</Text>;
  }
  if (!constructors.data || !instances.data) return <Spinner />;
  const byName = new Map(constructors.data.constructors.map((c) => [c.name, c]));

  const act = async (what: string, run: () => Promise<unknown>) => {
    setMessage("");
    try {
      await run();
      setMessage(what);
    } catch (failure) {
      setMessage(failure instanceof ApiError ? `Refused: ${failure.detail}` : String(failure));
    }
    setReload((n) => n + 1);
  };
  const instancePath = (i: InstanceInfo) => `mlwf/constructors/instances/${encodeURIComponent(i.instance_id)}`;

  return (
    <Stack gap={4} p={2}>
      <Heading size="md">Constructors</Heading>
      {message && <Text data-testid="message">{message}</Text>}
      <Table.Root size="sm" variant="outline" data-testid="constructors">
        <Table.Header>
          <Table.Row>
            {["name", "version", "description", ""].map((h) => (
              <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
            ))}
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {constructors.data.constructors.map((c) => (
            <Table.Row key={c.name} data-constructor={c.name}>
              <Table.Cell>{c.name}</Table.Cell>
              <Table.Cell>{c.version}</Table.Cell>
              <Table.Cell>{c.description}</Table.Cell>
              <Table.Cell>
                <Button size="xs" onClick={() => setEditing({ constructorInfo: c })}>
                  New instance
                </Button>
              </Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table.Root>
      {editing && (
        <InstanceForm
          key={`${editing.constructorInfo.name}/${editing.instance?.instance_id ?? ""}`}
          constructorInfo={editing.constructorInfo}
          instance={editing.instance}
          onCancel={() => setEditing(null)}
          onSaved={(saved) => {
            setEditing(null);
            setMessage(`Saved ${saved.instance_id}: its DAG appears once Airflow has parsed it.`);
            setReload((n) => n + 1);
          }}
        />
      )}
      <Heading size="sm">Instances</Heading>
      {instances.data.instances.length === 0 ? (
        <Text>No instances you may see yet.</Text>
      ) : (
        <Table.Root size="sm" variant="outline" data-testid="instances">
          <Table.Header>
            <Table.Row>
              {["instance (its DAG)", "constructor", "owner", "enabled", "updated", ""].map((h) => (
                <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
              ))}
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {instances.data.instances.map((i) => (
              <Table.Row key={i.instance_id} data-instance={i.instance_id}>
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
                <Table.Cell>
                  <HStack gap={1}>
                    {byName.has(i.constructor) && (
                      <Button size="xs" variant="outline" onClick={() => setEditing({ constructorInfo: byName.get(i.constructor) as ConstructorInfo, instance: i })}>
                        Edit
                      </Button>
                    )}
                    <Button
                      size="xs"
                      variant="outline"
                      onClick={() => {
                        const verb = i.enabled ? "disable" : "enable";
                        if (window.confirm(`${verb} ${i.instance_id}? ${i.enabled ? "Its DAG file is removed (its history stays)." : "Its DAG file is written again."}`)) {
                          void act(`${i.instance_id}: ${verb}d`, () => sendJson("POST", `${instancePath(i)}/${verb}`));
                        }
                      }}
                    >
                      {i.enabled ? "Disable" : "Enable"}
                    </Button>
                    <Button
                      size="xs"
                      variant="outline"
                      colorPalette="red"
                      onClick={() => {
                        if (window.confirm(`Delete ${i.instance_id}? Its DAG file and its stored values are removed.`)) {
                          void act(`${i.instance_id}: deleted`, () => sendJson("DELETE", instancePath(i)));
                        }
                      }}
                    >
                      Delete
                    </Button>
                  </HStack>
                </Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Stack>
  );
}
