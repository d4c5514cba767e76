import { fireEvent, screen, waitFor } from "@testing-library/react";

import { fakeFetch, renderPage } from "./test/render";
import { TuningForm } from "./TuningForm";
import type { ConstructorInfo } from "./types";

const CONSTRUCTORS: ConstructorInfo[] = [
  { name: "hyperparameter_tuning", version: "1", description: "", source: "", schema: { type: "object", properties: {} } },
  {
    name: "train_evaluate_workflow",
    version: "1",
    description: "",
    source: "",
    schema: { type: "object", properties: { C: { type: "number", minimum: 0, default: 1, description: "inverse regularization" } } },
  },
];

afterEach(() => vi.unstubAllGlobals());

function fill() {
  fireEvent.change(screen.getByLabelText(/^tuning id/), { target: { value: "tune_it" } });
  fireEvent.click(screen.getByLabelText("tune C"));
  fireEvent.change(screen.getByLabelText("C low"), { target: { value: "0.01" } });
  fireEvent.change(screen.getByLabelText("C high"), { target: { value: "10" } });
  fireEvent.click(screen.getByLabelText("C log"));
  fireEvent.change(screen.getByLabelText(/^metric/), { target: { value: "log_loss" } });
}

test("the form creates a hyperparameter_tuning instance with the spec it built", async () => {
  const { fetch, bodies } = fakeFetch({
    "POST mlwf/constructors/instances": { status: 201, body: { instance_id: "tune_it" } },
  });
  vi.stubGlobal("fetch", fetch);
  const onCreated = vi.fn();
  renderPage(<TuningForm constructors={CONSTRUCTORS} onCreated={onCreated} onCancel={() => {}} />);
  fill();
  fireEvent.click(screen.getByRole("button", { name: "Create the tuning" }));
  await waitFor(() => expect(onCreated).toHaveBeenCalled());
  const body = bodies[0] as { instance_id: string; constructor: string; values: { spec: string; constructor: string } };
  expect([body.instance_id, body.constructor, body.values.constructor]).toEqual([
    "tune_it",
    "hyperparameter_tuning",
    "train_evaluate_workflow",
  ]);
  expect(JSON.parse(body.values.spec).hyperparameters).toEqual({ C: { kind: "float", low: 0.01, high: 10, log: true } });
});

test("the server's refusal of the spec is shown", async () => {
  const { fetch } = fakeFetch({
    "POST mlwf/constructors/instances": { status: 422, body: { detail: "spec: unknown method", parameter: "spec" } },
  });
  vi.stubGlobal("fetch", fetch);
  renderPage(<TuningForm constructors={CONSTRUCTORS} onCreated={() => {}} onCancel={() => {}} />);
  fill();
  fireEvent.click(screen.getByRole("button", { name: "Create the tuning" }));
  expect((await screen.findByTestId("error-spec")).textContent).toBe("spec: unknown method");
});
