import { ChakraProvider, defaultSystem } from "@chakra-ui/react";
import { render } from "@testing-library/react";
import type { ReactElement, ReactNode } from "react";

function Host({ children }: { children: ReactNode }) {
  return <ChakraProvider value={defaultSystem}>{children}</ChakraProvider>;
}

/** Render inside Chakra's provider, as the host UI renders a plugin page (rerender keeps it). */
export function renderPage(element: ReactElement) {
  return render(element, { wrapper: Host });
}

/** A fetch that answers each URL (its path and query, or "METHOD path") with a JSON body and status. */
export function fakeFetch(answers: Record<string, { status?: number; body: unknown }>) {
  const calls: string[] = [];
  const bodies: unknown[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const key = url.pathname.replace(/^\//, "") + url.search;
    const method = init?.method ?? "GET";
    calls.push(method === "GET" ? key : `${method} ${key}`);
    if (init?.body) bodies.push(JSON.parse(String(init.body)));
    const answer = answers[`${method} ${key}`] ?? (method === "GET" ? answers[key] : undefined);
    if (!answer) return new Response(JSON.stringify({ detail: `no fake for ${key}` }), { status: 599 });
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { fetch, calls, bodies };
}
