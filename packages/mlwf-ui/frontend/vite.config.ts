// Builds src/main.tsx into ../src/mlwf_ui/static/main.js: one ES module that Airflow's UI loads
// with import(). React, its JSX runtime and Chakra UI are NOT bundled: the host page provides
// them as globals (globalThis.React, ReactJSXRuntime, ChakraUI), and the aliases below point
// the imports at small modules that read those globals. Tests (vitest) use the real packages.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const host = (name: string) => fileURLToPath(new URL(`./src/host/${name}`, import.meta.url));

export default defineConfig(({ mode }) => ({
  plugins: [react()],
  resolve:
    mode === "test"
      ? {}
      : {
          alias: [
            { find: /^react\/jsx-runtime$/, replacement: host("jsx-runtime.ts") },
            { find: /^react$/, replacement: host("react.ts") },
            { find: /^@chakra-ui\/react$/, replacement: host("chakra.ts") },
          ],
        },
  build: {
    outDir: "../src/mlwf_ui/static",
    emptyOutDir: true,
    sourcemap: false,
    // Not library mode: that would leave the ES module's whitespace unminified. One entry, one
    // file (no chunks, no preload helper), named main.js.
    modulePreload: false,
    // ECharts (the plots) is most of the bundle: about 600 kB, 200 kB gzip (docs/mlwf-ui).
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      input: "src/main.tsx",
      output: { format: "es", entryFileNames: "main.js", inlineDynamicImports: true },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
  },
}));
