import { fireEvent, screen, within } from "@testing-library/react";

import { ExperimentsTable } from "./ExperimentsTable";
import { experiment } from "./test/fixtures";
import { renderPage } from "./test/render";

const EXPERIMENTS = [
  experiment(0, { metrics: { loss: 0.5 } }),
  experiment(1, { metrics: { loss: 0.1 } }),
  experiment(2, { state: "failed", metrics: {}, error: "exit 1", duration_s: null }),
  experiment(3, { metrics: { loss: 0.3 } }),
];

function order(): string[] {
  const rows = within(screen.getByTestId("experiments")).getAllByRole("row").slice(1);
  return rows.map((r) => r.getAttribute("data-index") ?? "");
}

test("rows sort by a clicked column, and again reversed, empty cells last", () => {
  renderPage(<ExperimentsTable experiments={EXPERIMENTS} params={["lr"]} metrics={["loss"]} bestIndex={1} />);
  expect(order()).toEqual(["0", "1", "2", "3"]);
  fireEvent.click(screen.getByRole("columnheader", { name: /^loss/ }));
  expect(order()).toEqual(["1", "3", "0", "2"]);
  fireEvent.click(screen.getByRole("columnheader", { name: /^loss/ }));
  expect(order()).toEqual(["0", "3", "1", "2"]);
  expect(screen.getByRole("columnheader", { name: /^loss/ }).getAttribute("aria-sort")).toBe("descending");
});

test("the state filter keeps only that state's experiments", () => {
  renderPage(<ExperimentsTable experiments={EXPERIMENTS} params={["lr"]} metrics={["loss"]} bestIndex={1} />);
  fireEvent.change(screen.getByLabelText("filter by state"), { target: { value: "failed" } });
  expect(order()).toEqual(["2"]);
  expect(screen.getByText("1 of 4 experiments")).toBeTruthy();
  expect(screen.getByText("exit 1")).toBeTruthy();
});

test("the best experiment is marked", () => {
  renderPage(<ExperimentsTable experiments={EXPERIMENTS} params={["lr"]} metrics={["loss"]} bestIndex={1} />);
  expect(screen.getByText("1 ★")).toBeTruthy();
});
