// "react/jsx-runtime" in the built bundle: the host page's (globalThis.ReactJSXRuntime).
import type * as Runtime from "react/jsx-runtime";

const runtime = (globalThis as unknown as { ReactJSXRuntime: typeof Runtime }).ReactJSXRuntime;
export const { Fragment, jsx, jsxs } = runtime;
