import { ChakraProvider, defaultSystem } from "@chakra-ui/react";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";

/** Render inside Chakra's provider, as the host UI renders a plugin page. */
export function renderPage(element: ReactElement) {
  return render(<ChakraProvider value={defaultSystem}>{element}</ChakraProvider>);
}

/** A fetch that answers each URL (matched by its path and query) with a JSON body and status. */
export function fakeFetch(answers: Record<string, { status?: number; body: unknown }>) {
  const calls: string[] = [];
  const fetch = async (input: RequestInfo | URL) => {
    const url = new URL(String(input));
    const key = url.pathname.replace(/^\//, "") + url.search;
    calls.push(key);
    const answer = answers[key];
    if (!answer) return new Response(JSON.stringify({ detail: `no fake for ${key}` }), { status: 599 });
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { fetch, calls };
}
