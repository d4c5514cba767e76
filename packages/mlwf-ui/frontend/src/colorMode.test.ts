import { act, cleanup, renderHook } from "@testing-library/react";

import { useDarkMode } from "./colorMode";

afterEach(() => {
  cleanup(); // unmount first: the class change below must not reach a mounted hook
  document.documentElement.classList.remove("dark", "light");
});

test("follows the dark class Airflow's theme provider sets on <html>, also when it changes", async () => {
  document.documentElement.classList.add("light");
  const { result } = renderHook(() => useDarkMode());
  expect(result.current).toBe(false);
  await act(async () => {
    document.documentElement.classList.replace("light", "dark");
    await new Promise((resolve) => setTimeout(resolve, 0)); // the MutationObserver's callback
  });
  expect(result.current).toBe(true);
  await act(async () => {
    document.documentElement.classList.replace("dark", "light");
    await new Promise((resolve) => setTimeout(resolve, 0));
  });
  expect(result.current).toBe(false);
});

test("starts dark when the page already is", () => {
  document.documentElement.classList.add("dark");
  const { result } = renderHook(() => useDarkMode());
  expect(result.current).toBe(true);
});
