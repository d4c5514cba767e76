import { fireEvent, screen, within } from "@testing-library/react";

import { DEFAULT_PAGE_SIZE, ExperimentsTable } from "./ExperimentsTable";
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

test("many experiments are shown a page at a time; sorting and filtering cover them all", () => {
  const many = Array.from({ length: 120 }, (_, i) =>
    experiment(i, { state: i % 10 === 9 ? "failed" : "succeeded", metrics: { loss: (i * 37) % 120 } }),
  );
  renderPage(<ExperimentsTable experiments={many} params={["lr"]} metrics={["loss"]} bestIndex={null} />);
  const pages = () => screen.getByTestId("experiments-pages").textContent;
  expect(DEFAULT_PAGE_SIZE).toBe(50);
  expect(order()).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  expect(pages()).toContain("rows 1–50, page 1 of 3");
  expect(screen.getByRole("button", { name: "Previous" }).hasAttribute("disabled")).toBe(true);
  fireEvent.click(screen.getByRole("button", { name: "Next" }));
  fireEvent.click(screen.getByRole("button", { name: "Next" }));
  expect(order()).toEqual(Array.from({ length: 20 }, (_, i) => String(100 + i)));
  expect(pages()).toContain("rows 101–120, page 3 of 3");
  expect(screen.getByRole("button", { name: "Next" }).hasAttribute("disabled")).toBe(true);
  // A sort orders all 120 and starts again at page 1: loss 0 (experiment 0), 1 (experiment 13), ...
  fireEvent.click(screen.getByRole("columnheader", { name: /^loss/ }));
  expect(order().slice(0, 3)).toEqual(["0", "13", "26"]);
  expect(pages()).toContain("page 1 of 3");
  // A filter keeps the failed ones of all pages: 12 on one page.
  fireEvent.change(screen.getByLabelText("filter by state"), { target: { value: "failed" } });
  expect(order()).toHaveLength(12);
  expect(screen.getByTestId("experiments-count").textContent).toBe("12 of 120 experiments");
  fireEvent.change(screen.getByLabelText("filter by state"), { target: { value: "all" } });
  fireEvent.change(screen.getByLabelText("rows per page"), { target: { value: "250" } });
  expect(order()).toHaveLength(120);
  expect(pages()).toContain("page 1 of 1");
});
