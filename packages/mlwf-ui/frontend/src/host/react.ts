// "react" in the built bundle: the host page's React (globalThis.React), never a second copy.
import type * as ReactTypes from "react";

const React = (globalThis as unknown as { React: typeof ReactTypes }).React;
export default React;
export const {
  Fragment,
  StrictMode,
  Suspense,
  createContext,
  createElement,
  forwardRef,
  memo,
  startTransition,
  use,
  useCallback,
  useContext,
  useDeferredValue,
  useEffect,
  useId,
  useLayoutEffect,
  useMemo,
  useReducer,
  useRef,
  useState,
  useSyncExternalStore,
  useTransition,
} = React;
