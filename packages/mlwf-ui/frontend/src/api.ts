// Calls to the mlwf HTTP APIs of the API server that serves the page (same origin, the _token
// cookie). Paths are relative to the UI's base URL, so an API server under a prefix works.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly parameter?: string,
  ) {
    super(`${status}: ${detail}`);
  }
}

/** The absolute URL of ``path`` (no leading slash needed) under the UI's base URL. */
export function appUrl(path: string): string {
  return new URL(path.replace(/^\/+/, ""), document.baseURI).toString();
}

function detailOf(body: unknown): { detail?: string; parameter?: string } {
  if (body && typeof body === "object") {
    const { detail, parameter } = body as { detail?: unknown; parameter?: unknown };
    return {
      detail: typeof detail === "string" ? detail : detail === undefined ? undefined : JSON.stringify(detail),
      parameter: typeof parameter === "string" ? parameter : undefined,
    };
  }
  return {};
}

/** GET ``path`` and return its JSON; an answer that is not 2xx raises ApiError with its detail. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(appUrl(path), {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    signal,
  });
  if (!response.ok) {
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    const { detail, parameter } = detailOf(body);
    throw new ApiError(response.status, detail ?? response.statusText, parameter);
  }
  if (!(response.headers.get("content-type") ?? "").includes("json")) {
    // The UI answers unknown paths with its own HTML page: the package serving this is missing.
    throw new ApiError(404, `the API server has no route /${path.split("?")[0]} (is the mlwf package serving it installed?)`);
  }
  return (await response.json()) as T;
}

/** Send a write (JSON body, or none) and return the answer's JSON (null for 204); ApiError otherwise. */
export async function sendJson<T>(method: "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<T | null> {
  // The constructors API refuses cookie-authenticated writes that are not JSON (even without a
  // body: no HTML form can send that type) or come from another origin (cross-site request
  // forgery); fetch sends this page's Origin by itself.
  const response = await fetch(appUrl(path), {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let answer: unknown;
    try {
      answer = await response.json();
    } catch {
      answer = undefined;
    }
    const { detail, parameter } = detailOf(answer);
    throw new ApiError(response.status, detail ?? response.statusText, parameter);
  }
  return response.status === 204 ? null : ((await response.json()) as T);
}
