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

export function Chart({ id, option, height = 280 }: ChartProps) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<ECharts | null>(null);
  useEffect(() => {
    const made = init(element.current as HTMLDivElement);
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
    chart.current?.setOption(option, { notMerge: true });
  }, [option]);
  return <div ref={element} data-testid={`chart-${id}`} style={{ width: "100%", height }} />;
}
