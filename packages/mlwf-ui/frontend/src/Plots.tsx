import { Box, Heading, SimpleGrid, Text } from "@chakra-ui/react";
import { useMemo } from "react";

import { Chart } from "./Chart";
import { curvesOption, historyOption, measured, parallelOption, sliceOption } from "./plots";
import type { TuningDetail } from "./types";

/** The tuning's plots: history with best so far, parallel coordinates, slices, intermediate curves. */
export function Plots({ tuning }: { tuning: TuningDetail }) {
  const options = useMemo(
    () => ({
      history: historyOption(tuning),
      parallel: parallelOption(tuning),
      slices: tuning.hyperparameters.map((h) => ({ name: h.name, option: sliceOption(tuning, h) })),
      curves: tuning.experiments.some((e) => e.intermediate.length > 0) ? curvesOption(tuning) : null,
    }),
    [tuning],
  );
  if (measured(tuning).length === 0) {
    return <Text>No experiment has reported {tuning.metric} yet: the plots appear with the first result.</Text>;
  }
  return (
    <Box>
      <SimpleGrid columns={{ base: 1, xl: 2 }} gap={4}>
        <Box>
          <Heading size="sm">{tuning.metric} per experiment</Heading>
          <Chart id="history" option={options.history} />
        </Box>
        <Box>
          <Heading size="sm">Hyperparameters and {tuning.metric}</Heading>
          <Chart id="parallel" option={options.parallel} />
        </Box>
        {options.curves && (
          <Box>
            <Heading size="sm">Intermediate values (pruned: dashed)</Heading>
            <Chart id="curves" option={options.curves} />
          </Box>
        )}
      </SimpleGrid>
      <Heading size="sm" mt={4}>
        {tuning.metric} against each hyperparameter
      </Heading>
      <SimpleGrid columns={{ base: 1, md: 2, xl: 3 }} gap={4}>
        {options.slices.map((s) => (
          <Box key={s.name}>
            <Chart id={`slice-${s.name}`} option={s.option} height={220} />
          </Box>
        ))}
      </SimpleGrid>
    </Box>
  );
}
