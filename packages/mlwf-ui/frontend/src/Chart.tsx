// One ECharts chart. ECharts is imported piece by piece (docs/mlwf-ui: why ECharts), so the
// bundle holds only the charts and components the plots use.
import { LineChart, ParallelChart, ScatterChart } from "echarts/charts";
import {
  GridComponent,
  LegendComponent,
  MarkPointComponent,
  ParallelComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
} from "echarts/components";
import { type ECharts, init, use } from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef } from "react";

import { useDarkMode } from "./colorMode";

use([
  LineChart,
  ParallelChart,
  ScatterChart,
  GridComponent,
  LegendComponent,
  MarkPointComponent,
  ParallelComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
  CanvasRenderer,
]);

/** The charts on the page by id, with what they draw (``getOption()``): for tests and debugging. */
export const CHARTS: Map<string, ECharts> = new Map();
Reflect.set(globalThis, "mlwfCharts", CHARTS);

export interface ChartProps {
  id: string;
  option: Record<string, unknown>;
  height?: number;
}

/** ECharts' built-in theme for Airflow's colour mode. */
export function themeFor(dark: boolean): string {
  return dark ? "dark" : "default";
}

export function Chart({ id, option, height = 280 }: ChartProps) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<ECharts | null>(null);
  const dark = useDarkMode();
  const theme = useRef(themeFor(dark));
  useEffect(() => {
    const made = init(element.current as HTMLDivElement, theme.current);
    (element.current as HTMLDivElement).dataset.theme = theme.current;
    chart.current = made;
    CHARTS.set(id, made);
    const resize = new ResizeObserver(() => made.resize());
    resize.observe(element.current as HTMLDivElement);
    return () => {
      resize.disconnect();
      CHARTS.delete(id);
      made.dispose();
      chart.current = null;
    };
  }, [id]);
  useEffect(() => {
    // Airflow's colour mode changed: ECharts' dark theme (light text and axes), or back.
    if (theme.current === themeFor(dark)) return;
    theme.current = themeFor(dark);
    chart.current?.setTheme(theme.current);
    if (element.current) element.current.dataset.theme = theme.current; // what the chart drew with
  }, [dark]);
  useEffect(() => {
    // The page's own background shows through in either mode.
    chart.current?.setOption({ backgroundColor: "transparent", ...option }, { notMerge: true });
  }, [option]);
  return <div ref={element} data-testid={`chart-${id}`} style={{ width: "100%", height }} />;
}
