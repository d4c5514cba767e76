import { fireEvent, screen, waitFor } from "@testing-library/react";

import { InstanceForm } from "./InstanceForm";
import { fakeFetch, renderPage } from "./test/render";
import type { ConstructorInfo } from "./types";

const WORKFLOW: ConstructorInfo = {
  name: "train_evaluate_workflow",
  version: "1",
  description: "train and validate",
  source: "entry point",
  schema: {
    type: "object",
    properties: {
      dataset: { enum: ["iris", "wine"], description: "bundled dataset", default: "iris" },
      C: { type: "number", minimum: 0, description: "inverse regularization", default: 1.0 },
    },
    required: [],
    additionalProperties: false,
  },
};

afterEach(() => vi.unstubAllGlobals());

function type(label: string | RegExp, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

test("a value the schema refuses is shown at its field and nothing is sent", async () => {
  const { fetch, calls } = fakeFetch({});
  vi.stubGlobal("fetch", fetch);
  renderPage(<InstanceForm constructorInfo={WORKFLOW} onSaved={() => {}} onCancel={() => {}} />);
  expect(screen.getByText("inverse regularization")).toBeTruthy(); // the description as help
  type(/^instance id/, "my_model");
  type("C", "-1");
  fireEvent.click(screen.getByRole("button", { name: "Create" }));
  expect((await screen.findByTestId("error-C")).textContent).toBe("must be at least 0");
  expect(calls).toEqual([]);
});

test("the server's 422 is shown next to the field it names", async () => {
  const { fetch, calls, bodies } = fakeFetch({
    "POST mlwf/constructors/instances": { status: 422, body: { detail: "C: expects float, got 'x'", parameter: "C" } },
  });
  vi.stubGlobal("fetch", fetch);
  renderPage(<InstanceForm constructorInfo={WORKFLOW} onSaved={() => {}} onCancel={() => {}} />);
  type(/^instance id/, "my_model");
  fireEvent.change(screen.getByLabelText("dataset"), { target: { value: '"wine"' } });
  fireEvent.click(screen.getByRole("button", { name: "Create" }));
  expect((await screen.findByTestId("error-C")).textContent).toBe("C: expects float, got 'x'");
  expect(calls).toEqual(["POST mlwf/constructors/instances"]);
  expect(bodies).toEqual([{ instance_id: "my_model", constructor: "train_evaluate_workflow", values: { dataset: "wine", C: 1 } }]);
});

test("a created instance is handed back", async () => {
  const saved = { instance_id: "my_model", constructor: "train_evaluate_workflow", values: {} };
  const { fetch } = fakeFetch({ "POST mlwf/constructors/instances": { status: 201, body: saved } });
  vi.stubGlobal("fetch", fetch);
  const onSaved = vi.fn();
  renderPage(<InstanceForm constructorInfo={WORKFLOW} onSaved={onSaved} onCancel={() => {}} />);
  type(/^instance id/, "my_model");
  fireEvent.click(screen.getByRole("button", { name: "Create" }));
  await waitFor(() => expect(onSaved).toHaveBeenCalledWith(saved));
});
