import { useEffect, useState } from "react";

import { ApiError, getJson } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
}

/**
 * GET ``path`` now and, while ``every(data)`` returns a delay in ms, again after that delay.
 * A new ``reload`` value reads it again at once.
 */
export function usePolling<T>(path: string | null, every: (data: T) => number | null, reload = 0): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: undefined, error: undefined, loading: true });
  useEffect(() => {
    if (path === null) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const data = await getJson<T>(path, abort.signal);
        setState({ data, error: undefined, loading: false });
        const delay = every(data);
        if (delay !== null) timer = setTimeout(load, delay);
      } catch (error) {
        if (abort.signal.aborted) return;
        setState((old) => ({ data: old.data, error: error as Error, loading: false }));
      }
    };
    setState((old) => ({ data: old.data, error: undefined, loading: old.data === undefined }));
    void load();
    return () => {
      abort.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
    // `every` is a policy, not data: a new function each render must not restart the polling.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, reload]);
  return state;
}
