import { useEffect, useState } from "react";

import { ApiError, getJson } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
}

/** The longest wait between retries after failed reads. */
export const MAX_RETRY_MS = 60000;

function retryable(error: unknown): boolean {
  // A 4xx will not change by asking again; a 5xx or a network failure may.
  return !(error instanceof ApiError) || error.status >= 500;
}

/**
 * Calls ``run`` once the page is visible: at once when it is, else when the user comes back to
 * the tab. Returns a function that cancels the wait.
 */
function whenVisible(run: () => void): () => void {
  if (document.visibilityState !== "hidden") {
    run();
    return () => undefined;
  }
  const shown = () => {
    if (document.visibilityState === "hidden") return;
    document.removeEventListener("visibilitychange", shown);
    run();
  };
  document.addEventListener("visibilitychange", shown);
  return () => document.removeEventListener("visibilitychange", shown);
}

/**
 * GET ``path`` now and, while ``every(data)`` returns a delay in ms, again after that delay.
 * While the browser tab is hidden, no read is made: the next one waits until the tab shows again.
 * A failed read that may succeed later (5xx, network) is retried with a growing delay, keeping
 * the last data. A new ``reload`` value reads again at once. Data read for another path are
 * never returned (the component may stay mounted while its route changes).
 */
export function usePolling<T>(path: string | null, every: (data: T) => number | null, reload = 0): Loaded<T> {
  const [state, setState] = useState<Loaded<T> & { path: string | null }>({
    data: undefined,
    error: undefined,
    loading: true,
    path,
  });
  useEffect(() => {
    if (path === null) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let cancelWait: () => void = () => undefined;
    let failures = 0;
    let last: T | undefined;
    const load = async () => {
      try {
        const data = await getJson<T>(path, abort.signal);
        if (abort.signal.aborted) return;
        failures = 0;
        last = data;
        setState({ data, error: undefined, loading: false, path });
        const delay = every(data);
        if (delay !== null) timer = setTimeout(later, delay);
      } catch (error) {
        if (abort.signal.aborted) return;
        failures += 1;
        setState((old) => ({ data: old.path === path ? old.data : undefined, error: error as Error, loading: false, path }));
        const delay = last === undefined ? 1000 : every(last);
        if (retryable(error) && delay !== null) {
          timer = setTimeout(later, Math.min(delay * 2 ** failures, MAX_RETRY_MS));
        }
      }
    };
    // A due refresh waits while the tab is hidden (no reads nobody sees), then runs at once.
    const later = () => {
      cancelWait = whenVisible(() => void load());
    };
    setState((old) => (old.path === path ? { ...old, error: undefined } : { data: undefined, error: undefined, loading: true, path }));
    void load();
    return () => {
      abort.abort();
      if (timer !== undefined) clearTimeout(timer);
      cancelWait();
    };
    // `every` is a policy, not data: a new function each render must not restart the polling.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, reload]);
  if (state.path !== path) return { data: undefined, error: undefined, loading: true };
  return { data: state.data, error: state.error, loading: state.loading };
}
