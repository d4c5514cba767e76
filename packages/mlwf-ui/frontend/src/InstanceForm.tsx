import { Box, Button, HStack, Input, Stack, Text, Textarea } from "@chakra-ui/react";
import { useMemo, useState } from "react";

import { ApiError, sendJson } from "./api";
import { FieldError } from "./FieldError";
import { type FieldSpec, collect, fieldsOf, initialText } from "./schemaForm";
import type { ConstructorInfo, InstanceInfo } from "./types";

export interface InstanceFormProps {
  constructorInfo: ConstructorInfo;
  /** The instance to edit; none: create a new one. */
  instance?: InstanceInfo;
  onSaved: (saved: InstanceInfo) => void;
  onCancel: () => void;
}

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,200}$/;

function FieldInput({ field, text, onChange }: { field: FieldSpec; text: string; onChange: (t: string) => void }) {
  const id = `field-${field.name}`;
  if (field.kind === "enum") {
    return (
      <select id={id} name={field.name} value={text} onChange={(e) => onChange(e.target.value)}>
        {!field.hasDefault && <option value="">(choose)</option>}
        {field.choices.map((c) => (
          <option key={JSON.stringify(c)} value={JSON.stringify(c)}>
            {String(c)}
          </option>
        ))}
      </select>
    );
  }
  if (field.kind === "boolean") {
    return (
      <input id={id} name={field.name} type="checkbox" checked={text === "true"} onChange={(e) => onChange(String(e.target.checked))} />
    );
  }
  const s = field.schema;
  if (field.kind === "json" || (field.kind === "string" && (typeof s.maxLength !== "number" || s.maxLength > 200) && /json/i.test(field.description))) {
    return <Textarea id={id} name={field.name} value={text} rows={6} fontFamily="mono" onChange={(e) => onChange(e.target.value)} />;
  }
  return (
    <Input
      id={id}
      name={field.name}
      value={text}
      inputMode={field.kind === "integer" || field.kind === "number" ? "decimal" : undefined}
      placeholder={field.nullable ? "(empty: none)" : undefined}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

/** Create or edit an instance: a field per parameter (from the schema), checked before sending. */
export function InstanceForm({ constructorInfo, instance, onSaved, onCancel }: InstanceFormProps) {
  const fields = useMemo(() => fieldsOf(constructorInfo.schema), [constructorInfo]);
  const [instanceId, setInstanceId] = useState(instance?.instance_id ?? "");
  const [texts, setTexts] = useState<Record<string, string>>(() =>
    Object.fromEntries(fields.map((f) => [f.name, initialText(f, instance?.values[f.name])])),
  );
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string>("");
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    const { values, errors: found } = collect(fields, texts);
    if (!instance && !ID_PATTERN.test(instanceId)) {
      found.instance_id = "1 to 200 letters, digits, _ . or -";
    }
    setErrors(found);
    setGeneral("");
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    try {
      const saved = instance
        ? await sendJson<InstanceInfo>("PATCH", `mlwf/constructors/instances/${encodeURIComponent(instance.instance_id)}`, { values })
        : await sendJson<InstanceInfo>("POST", "mlwf/constructors/instances", {
            instance_id: instanceId,
            constructor: constructorInfo.name,
            values,
          });
      if (saved) onSaved(saved);
    } catch (error) {
      // The server's 422 names the field at fault: show it there.
      if (error instanceof ApiError && error.parameter && (error.parameter === "instance_id" || fields.some((f) => f.name === error.parameter))) {
        setErrors({ [error.parameter]: error.detail });
      } else {
        setGeneral(error instanceof Error ? (error instanceof ApiError ? error.detail : error.message) : String(error));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <Box borderWidth="1px" borderRadius="md" p={4} data-testid="instance-form">
      <Stack gap={3}>
        <Text fontWeight="bold">
          {instance ? `Edit ${instance.instance_id}` : `New instance of ${constructorInfo.name}`}
        </Text>
        {!instance && (
          <Box>
            <label htmlFor="field-instance_id">
              <Text fontSize="sm" fontWeight="semibold">
                instance id (also its DAG's id) *
              </Text>
            </label>
            <Input id="field-instance_id" name="instance_id" value={instanceId} onChange={(e) => setInstanceId(e.target.value)} />
            <FieldError name="instance_id" errors={errors} />
          </Box>
        )}
        {fields.map((field) => (
          <Box key={field.name}>
            <label htmlFor={`field-${field.name}`}>
              <Text fontSize="sm" fontWeight="semibold">
                {field.name}
                {field.required && !field.hasDefault ? " *" : ""}
              </Text>
            </label>
            <FieldInput
              field={field}
              text={texts[field.name] ?? ""}
              onChange={(t) => {
                setTexts((old) => ({ ...old, [field.name]: t }));
                // An edited field's error is stale until the next check.
                setErrors(({ [field.name]: _, ...rest }) => rest);
              }}
            />
            {field.description && (
              <Text fontSize="xs" color="fg.muted">
                {field.description}
              </Text>
            )}
            <FieldError name={field.name} errors={errors} />
          </Box>
        ))}
        {general && (
          <Text color="fg.error" data-testid="form-error">
            {general}
          </Text>
        )}
        <HStack>
          <Button onClick={() => void submit()} loading={busy} colorPalette="blue">
            {instance ? "Save" : "Create"}
          </Button>
          <Button variant="outline" onClick={onCancel}>
            Cancel
          </Button>
        </HStack>
      </Stack>
    </Box>
  );
}
