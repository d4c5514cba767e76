import { collect, fieldsOf, initialText, parseField } from "./schemaForm";

const SCHEMA = {
  type: "object",
  properties: {
    dataset: { enum: ["iris", "wine"], description: "bundled dataset", default: "iris" },
    C: { type: "number", minimum: 0, default: 1.0 },
    max_iter: { type: "integer", minimum: 1, maximum: 5000 },
    name: { type: "string", pattern: "^(?:[a-z]{1,8})$", default: "" },
    tags: { type: "array", items: { type: "string" }, default: ["a"] },
    note: { type: ["string", "null"], default: null },
    fast: { type: "boolean", default: false },
  },
  required: ["max_iter"],
  additionalProperties: false,
};

test("fields follow the schema: kinds, required, defaults", () => {
  const fields = fieldsOf(SCHEMA);
  expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
    ["dataset", "enum", false],
    ["C", "number", false],
    ["max_iter", "integer", true],
    ["name", "string", false],
    ["tags", "json", false],
    ["note", "string", false],
    ["fast", "boolean", false],
  ]);
  expect(fields.map((f) => initialText(f, undefined))).toEqual(['"iris"', "1", "", "", '[\n  "a"\n]', "", "false"]);
});

test("numbers are checked against their type and range", () => {
  const [, c, maxIter] = fieldsOf(SCHEMA);
  expect(parseField(c, "-1")).toEqual({ ok: false, error: "must be at least 0" });
  expect(parseField(maxIter, "2.5")).toEqual({ ok: false, error: "must be a whole number" });
  expect(parseField(maxIter, "6000")).toEqual({ ok: false, error: "must be at most 5000" });
  expect(parseField(maxIter, "abc")).toEqual({ ok: false, error: "must be a number" });
  expect(parseField(maxIter, "")).toEqual({ ok: false, error: "is required" });
  expect(parseField(c, "")).toEqual({ ok: true, value: undefined, omitted: true });
  expect(parseField(maxIter, "12")).toEqual({ ok: true, value: 12, omitted: false });
});

test("strings, enums and JSON fields", () => {
  const fields = fieldsOf(SCHEMA);
  const name = fields[3];
  expect(parseField(name, "Abc")).toEqual({ ok: false, error: "must match ^(?:[a-z]{1,8})$" });
  expect(parseField(fields[0], '"wine"')).toEqual({ ok: true, value: "wine", omitted: false });
  expect(parseField(fields[4], "[1,")).toMatchObject({ ok: false });
  expect(parseField(fields[5], "")).toEqual({ ok: true, value: null, omitted: false });
});

test("collect gives the values to send and every error at once", () => {
  const fields = fieldsOf(SCHEMA);
  const { values, errors } = collect(fields, { dataset: '"wine"', C: "-2", max_iter: "", name: "ok", fast: "true" });
  expect(errors).toEqual({ C: "must be at least 0", max_iter: "is required" });
  expect(values).toEqual({ dataset: "wine", name: "ok", note: null, fast: true });
});
