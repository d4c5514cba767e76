import { PAGES } from "./main";

test("the bundle registers a component under each React app's name", () => {
  // The names of packages/mlwf-ui/src/mlwf_ui/_plugin.py REACT_APPS (a Python test checks them).
  for (const name of ["Constructors", "Tunings", "Tuning"]) {
    expect(Reflect.get(globalThis, name)).toBe(PAGES[name as keyof typeof PAGES]);
    expect(typeof Reflect.get(globalThis, name)).toBe("function");
  }
});
