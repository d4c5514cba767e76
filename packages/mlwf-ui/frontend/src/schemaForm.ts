// A form from a constructor's JSON schema (mlwf-constructors' Parameter.schema()): what each
// field is, its initial text, and the checks the browser can make before the server's.

export type FieldKind = "enum" | "integer" | "number" | "boolean" | "string" | "json";

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  nullable: boolean;
  required: boolean;
  description: string;
  schema: Record<string, unknown>;
  choices: unknown[];
  default: unknown;
  hasDefault: boolean;
}

type Schema = Record<string, unknown>;

function typeOf(schema: Schema): { type: string | undefined; nullable: boolean } {
  const declared = schema.type;
  if (Array.isArray(declared)) {
    const others = declared.filter((t) => t !== "null");
    return { type: others.length === 1 ? String(others[0]) : undefined, nullable: declared.includes("null") };
  }
  return { type: typeof declared === "string" ? declared : undefined, nullable: false };
}

/** The fields of an object schema, in its order. */
export function fieldsOf(schema: Schema): FieldSpec[] {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, prop]) => {
    const { type, nullable } = typeOf(prop);
    const kind: FieldKind = Array.isArray(prop.enum)
      ? "enum"
      : type === "integer" || type === "number" || type === "boolean" || type === "string"
        ? type
        : "json";
    return {
      name,
      kind,
      nullable,
      required: required.has(name),
      description: typeof prop.description === "string" ? prop.description : "",
      schema: prop,
      choices: Array.isArray(prop.enum) ? prop.enum : [],
      default: prop.default,
      hasDefault: "default" in prop,
    };
  });
}

/** The text a field's input starts with: the value given, else the default, else empty. */
export function initialText(field: FieldSpec, value: unknown): string {
  const v = value !== undefined ? value : field.hasDefault ? field.default : undefined;
  if (v === undefined || v === null) return "";
  if (field.kind === "json") return JSON.stringify(v, null, 2);
  if (field.kind === "enum") return JSON.stringify(v);
  return String(v);
}

export type Parsed = { ok: true; value: unknown; omitted: boolean } | { ok: false; error: string };

/** The value of a field's text, checked against its schema as far as the browser can. */
export function parseField(field: FieldSpec, text: string): Parsed {
  const s = field.schema;
  if (text.trim() === "" && field.nullable) return { ok: true, value: null, omitted: false };
  if (text.trim() === "" && field.kind !== "string") {
    if (field.required && !field.hasDefault) return { ok: false, error: "is required" };
    return { ok: true, value: undefined, omitted: true };
  }
  switch (field.kind) {
    case "enum": {
      const value = JSON.parse(text) as unknown;
      return field.choices.some((c) => JSON.stringify(c) === text)
        ? { ok: true, value, omitted: false }
        : { ok: false, error: `must be one of ${field.choices.map((c) => JSON.stringify(c)).join(", ")}` };
    }
    case "integer":
    case "number": {
      const value = Number(text);
      if (!Number.isFinite(value)) return { ok: false, error: "must be a number" };
      if (field.kind === "integer" && !Number.isInteger(value)) return { ok: false, error: "must be a whole number" };
      if (typeof s.minimum === "number" && value < s.minimum) return { ok: false, error: `must be at least ${s.minimum}` };
      if (typeof s.maximum === "number" && value > s.maximum) return { ok: false, error: `must be at most ${s.maximum}` };
      return { ok: true, value, omitted: false };
    }
    case "boolean":
      return { ok: true, value: text === "true", omitted: false };
    case "string": {
      if (text === "" && field.required && !field.hasDefault) return { ok: false, error: "is required" };
      if (typeof s.minLength === "number" && text.length < s.minLength)
        return { ok: false, error: `needs at least ${s.minLength} characters` };
      if (typeof s.maxLength === "number" && text.length > s.maxLength)
        return { ok: false, error: `takes at most ${s.maxLength} characters` };
      if (typeof s.pattern === "string") {
        let pattern: RegExp | undefined;
        try {
          pattern = new RegExp(s.pattern, "u");
        } catch {
          pattern = undefined; // a pattern the browser's engine cannot read: the server checks it
        }
        if (pattern && !pattern.test(text)) return { ok: false, error: `must match ${s.pattern}` };
      }
      return { ok: true, value: text, omitted: false };
    }
    case "json": {
      try {
        return { ok: true, value: JSON.parse(text) as unknown, omitted: false };
      } catch (error) {
        return { ok: false, error: `is not valid JSON (${(error as Error).message})` };
      }
    }
  }
}

/** Check every field; return the values to send (omitted ones left out) and the errors by field. */
export function collect(
  fields: FieldSpec[],
  texts: Record<string, string>,
): { values: Record<string, unknown>; errors: Record<string, string> } {
  const values: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const parsed = parseField(field, texts[field.name] ?? "");
    if (!parsed.ok) errors[field.name] = parsed.error;
    else if (!parsed.omitted) values[field.name] = parsed.value;
  }
  return { values, errors };
}
