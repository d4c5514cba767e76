import { act, screen, waitFor } from "@testing-library/react";

import { experiment, tuning } from "../test/fixtures";
import { fakeFetch, renderPage } from "../test/render";
import { REFRESH_MS, TuningView } from "./Tuning";

// ECharts draws on a canvas, which jsdom lacks: here a chart is a placeholder that shows its
// series' sizes (the plots' data are tested in plots.test.ts, their drawing in Chromium).
vi.mock("../Chart", () => ({
  Chart: ({ id, option }: { id: string; option: { series: { data: unknown[] }[] } }) => (
    <div data-testid={`chart-${id}`}>{option.series.map((s) => s.data.length).join(",")}</div>
  ),
}));

const PATH = "mlwf/tuning/tunings/tune/manual__1";

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

test("a run that is no tuning says so", async () => {
  const { fetch } = fakeFetch({ [PATH]: { status: 404, body: { detail: "no such tuning" } } });
  vi.stubGlobal("fetch", fetch);
  renderPage(<TuningView dagId="tune" runId="manual__1" />);
  expect(await screen.findByTestId("not-a-tuning")).toBeTruthy();
});

test("a finished tuning shows its best experiment and is not read again", async () => {
  const done = tuning([experiment(0), experiment(1)], { best_index: 1, best_value: 0.5 });
  const { fetch, calls } = fakeFetch({ [PATH]: { body: done } });
  vi.stubGlobal("fetch", fetch);
  vi.useFakeTimers({ shouldAdvanceTime: true });
  renderPage(<TuningView dagId="tune" runId="manual__1" />);
  expect((await screen.findByTestId("best")).textContent).toBe(
    "Best: experiment 1, loss = 0.5 with kernel = rbf, lr = 0.02",
  );
  expect(screen.getByTestId("chart-history").textContent).toBe("2,2");  // succeeded, best so far
  expect(screen.getByTestId("chart-parallel").textContent).toBe("2");
  expect(screen.queryByTestId("chart-curves")).toBeNull();  // nothing reported intermediate values
  await act(() => vi.advanceTimersByTimeAsync(3 * REFRESH_MS));
  expect(calls).toEqual([PATH]);
});

test("a running tuning is read again until it ends", async () => {
  const running = tuning([experiment(0), experiment(1, { state: "running", metrics: {} })], {
    states: { succeeded: 1, running: 1 },
    run_state: "running",
  });
  const answers = fakeFetch({ [PATH]: { body: running } });
  vi.stubGlobal("fetch", answers.fetch);
  vi.useFakeTimers({ shouldAdvanceTime: true });
  renderPage(<TuningView dagId="tune" runId="manual__1" />);
  await screen.findByTestId("best");
  await act(() => vi.advanceTimersByTimeAsync(REFRESH_MS + 100));
  await waitFor(() => expect(answers.calls.length).toBe(2));
  // The run ends (a planned experiment is left, as when a time budget stops a tuning): no more reads.
  const ended = { ...running, run_state: "failed", states: { succeeded: 1, planned: 1 } };
  const after = fakeFetch({ [PATH]: { body: ended } });
  vi.stubGlobal("fetch", after.fetch);
  await act(() => vi.advanceTimersByTimeAsync(REFRESH_MS + 100));
  await act(() => vi.advanceTimersByTimeAsync(5 * REFRESH_MS));
  expect(after.calls).toEqual([PATH]);
});

function setVisibility(state: "visible" | "hidden") {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}

test("a running tuning is not read while the browser tab is hidden, and at once when it shows", async () => {
  const running = tuning([experiment(0)], { run_state: "running", best_index: 0, best_value: 1 });
  const answers = fakeFetch({ [PATH]: { body: running } });
  vi.stubGlobal("fetch", answers.fetch);
  vi.useFakeTimers({ shouldAdvanceTime: true });
  try {
    renderPage(<TuningView dagId="tune" runId="manual__1" />);
    await screen.findByTestId("best");
    setVisibility("hidden");
    await act(() => vi.advanceTimersByTimeAsync(10 * REFRESH_MS));
    expect(answers.calls).toEqual([PATH]);
    await act(async () => setVisibility("visible"));
    await waitFor(() => expect(answers.calls).toEqual([PATH, PATH]));
    await act(() => vi.advanceTimersByTimeAsync(REFRESH_MS + 100)); // then on its usual rhythm
    await waitFor(() => expect(answers.calls.length).toBe(3));
  } finally {
    setVisibility("visible");
  }
});

test("a failed refresh is retried and the last results stay", async () => {
  const running = tuning([experiment(0)], { run_state: "running", best_index: 0, best_value: 1 });
  const ok = fakeFetch({ [PATH]: { body: running } });
  vi.stubGlobal("fetch", ok.fetch);
  vi.useFakeTimers({ shouldAdvanceTime: true });
  renderPage(<TuningView dagId="tune" runId="manual__1" />);
  await screen.findByTestId("best");
  const down = fakeFetch({ [PATH]: { status: 503, body: { detail: "database unavailable" } } });
  vi.stubGlobal("fetch", down.fetch);
  await act(() => vi.advanceTimersByTimeAsync(REFRESH_MS + 100));
  expect(await screen.findByText(/refresh failed/)).toBeTruthy();
  expect(screen.getByTestId("best")).toBeTruthy(); // the last results stay
  vi.stubGlobal("fetch", ok.fetch);
  await act(() => vi.advanceTimersByTimeAsync(2 * REFRESH_MS + 100)); // retried after a longer wait
  await waitFor(() => expect(screen.queryByText(/refresh failed/)).toBeNull());
});

test("a route change never shows the previous run's results", async () => {
  const done = tuning([experiment(0)], { best_index: 0, best_value: 1 });
  const { fetch } = fakeFetch({
    [PATH]: { body: done },
    "mlwf/tuning/tunings/tune/other": { status: 404, body: { detail: "no such tuning" } },
  });
  vi.stubGlobal("fetch", fetch);
  const view = renderPage(<TuningView dagId="tune" runId="manual__1" />);
  await screen.findByTestId("best");
  view.rerender(<TuningView dagId="tune" runId="other" />);
  expect(screen.queryByTestId("best")).toBeNull();
  expect(await screen.findByTestId("not-a-tuning")).toBeTruthy();
});

test("dot ids are no tuning", () => {
  renderPage(<TuningView dagId="tune" runId=".." />);
  expect(screen.getByTestId("not-a-tuning")).toBeTruthy();
});
