import { Box, Button, HStack, Input, Stack, Table, Text, Textarea } from "@chakra-ui/react";
import { useMemo, useState } from "react";

import { ApiError, sendJson } from "./api";
import { FieldError } from "./FieldError";
import { type Choice, type TuningChoices, tunableParameters, tuningValues } from "./specBuilder";
import type { ConstructorInfo, InstanceInfo } from "./types";

/** The constructor whose instances are tunings (mlwf-tuning). */
export const TUNING_CONSTRUCTOR = "hyperparameter_tuning";
const METHODS = ["tpe", "random", "grid", "gp"];

export interface TuningFormProps {
  constructors: ConstructorInfo[];
  onCreated: (created: InstanceInfo) => void;
  onCancel: () => void;
}

/** "Create a tuning": a spec built from a constructor's parameters, saved as a tuning instance. */
export function TuningForm({ constructors, onCreated, onCancel }: TuningFormProps) {
  const tunable = constructors.filter((c) => c.name !== TUNING_CONSTRUCTOR && tunableParameters(c).length > 0);
  const [tuningId, setTuningId] = useState("");
  const [choices, setChoices] = useState<TuningChoices>({
    target: tunable[0]?.name ?? "",
    metric: "",
    direction: "minimize",
    method: "tpe",
    nExperiments: "10",
    parallelism: "2",
    baseConf: "{}",
    parameters: {},
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const info = tunable.find((c) => c.name === choices.target);
  const parameters = useMemo(() => (info ? tunableParameters(info) : []), [info]);
  const set = (changes: Partial<TuningChoices>) => setChoices((old) => ({ ...old, ...changes }));
  const setParameter = (name: string, changes: Partial<Choice>) =>
    setChoices((old) => ({
      ...old,
      parameters: {
        ...old.parameters,
        [name]: { ...{ tune: false, low: "", high: "", log: false }, ...old.parameters[name], ...changes },
      },
    }));

  if (!constructors.some((c) => c.name === TUNING_CONSTRUCTOR)) {
    return <Text>Tunings need mlwf-tuning's {TUNING_CONSTRUCTOR} constructor, which this server does not have.</Text>;
  }
  if (tunable.length === 0) return <Text>No constructor has a parameter to tune.</Text>;

  const submit = async () => {
    const built = tuningValues(parameters, choices);
    const found = "errors" in built ? { ...built.errors } : {};
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(tuningId)) found.instance_id = "1 to 200 letters, digits, _ . or -";
    setErrors(found);
    if (Object.keys(found).length > 0 || !("values" in built)) return;
    setBusy(true);
    try {
      const created = await sendJson<InstanceInfo>("POST", "mlwf/constructors/instances", {
        instance_id: tuningId,
        constructor: TUNING_CONSTRUCTOR,
        values: built.values,
      });
      if (created) onCreated(created);
    } catch (error) {
      const where = error instanceof ApiError && error.parameter === "instance_id" ? "instance_id" : "spec";
      setErrors({ [where]: error instanceof ApiError ? error.detail : String(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Box borderWidth="1px" borderRadius="md" p={4} data-testid="tuning-form">
      <Stack gap={3}>
        <Text fontWeight="bold">Create a tuning</Text>
        <label>
          <Text fontSize="sm" fontWeight="semibold">
            tuning id (also its DAG's id) *
          </Text>
          <Input name="instance_id" value={tuningId} onChange={(e) => setTuningId(e.target.value)} />
        </label>
        <FieldError name="instance_id" errors={errors} />
        <label>
          <Text fontSize="sm" fontWeight="semibold">
            constructor to tune
          </Text>
          <select name="constructor" value={choices.target} onChange={(e) => set({ target: e.target.value, parameters: {} })}>
            {tunable.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <Table.Root size="sm" variant="outline">
          <Table.Header>
            <Table.Row>
              {["tune", "parameter", "low", "high", "log scale"].map((h) => (
                <Table.ColumnHeader key={h}>{h}</Table.ColumnHeader>
              ))}
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {parameters.map((p) => {
              const c = choices.parameters[p.name];
              return (
                <Table.Row key={p.name} data-parameter={p.name}>
                  <Table.Cell>
                    <input
                      type="checkbox"
                      aria-label={`tune ${p.name}`}
                      checked={c?.tune ?? false}
                      onChange={(e) => setParameter(p.name, { tune: e.target.checked })}
                    />
                  </Table.Cell>
                  <Table.Cell>
                    {p.name}
                    <Text fontSize="xs" color="fg.muted">
                      {p.kind === "categorical" ? `every choice: ${p.choices.map(String).join(", ")}` : p.description}
                    </Text>
                    <FieldError name={p.name} errors={errors} />
                  </Table.Cell>
                  {p.kind === "categorical" ? (
                    <Table.Cell colSpan={3} />
                  ) : (
                    <>
                      <Table.Cell>
                        <Input size="sm" aria-label={`${p.name} low`} value={c?.low ?? ""} onChange={(e) => setParameter(p.name, { low: e.target.value })} />
                      </Table.Cell>
                      <Table.Cell>
                        <Input size="sm" aria-label={`${p.name} high`} value={c?.high ?? ""} onChange={(e) => setParameter(p.name, { high: e.target.value })} />
                      </Table.Cell>
                      <Table.Cell>
                        <input type="checkbox" aria-label={`${p.name} log`} checked={c?.log ?? false} onChange={(e) => setParameter(p.name, { log: e.target.checked })} />
                      </Table.Cell>
                    </>
                  )}
                </Table.Row>
              );
            })}
          </Table.Body>
        </Table.Root>
        <HStack gap={4} wrap="wrap" align="start">
          <label>
            <Text fontSize="sm" fontWeight="semibold">
              metric *
            </Text>
            <Input name="metric" value={choices.metric} onChange={(e) => set({ metric: e.target.value })} />
            <FieldError name="metric" errors={errors} />
          </label>
          <label>
            <Text fontSize="sm" fontWeight="semibold">
              direction
            </Text>
            <select name="direction" value={choices.direction} onChange={(e) => set({ direction: e.target.value as TuningChoices["direction"] })}>
              <option value="minimize">minimize</option>
              <option value="maximize">maximize</option>
            </select>
          </label>
          <label>
            <Text fontSize="sm" fontWeight="semibold">
              method
            </Text>
            <select name="method" value={choices.method} onChange={(e) => set({ method: e.target.value })}>
              {METHODS.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>
          <label>
            <Text fontSize="sm" fontWeight="semibold">
              experiments
            </Text>
            <Input name="n_experiments" value={choices.nExperiments} onChange={(e) => set({ nExperiments: e.target.value })} />
            <FieldError name="n_experiments" errors={errors} />
          </label>
          <label>
            <Text fontSize="sm" fontWeight="semibold">
              at a time
            </Text>
            <Input name="parallelism" value={choices.parallelism} onChange={(e) => set({ parallelism: e.target.value })} />
            <FieldError name="parallelism" errors={errors} />
          </label>
        </HStack>
        <label>
          <Text fontSize="sm" fontWeight="semibold">
            values every experiment gets (JSON)
          </Text>
          <Textarea name="base_conf" rows={2} fontFamily="mono" value={choices.baseConf} onChange={(e) => set({ baseConf: e.target.value })} />
        </label>
        <FieldError name="base_conf" errors={errors} />
        <FieldError name="spec" errors={errors} />
        <HStack>
          <Button colorPalette="blue" loading={busy} onClick={() => void submit()}>
            Create the tuning
          </Button>
          <Button variant="outline" onClick={onCancel}>
            Cancel
          </Button>
        </HStack>
      </Stack>
    </Box>
  );
}
