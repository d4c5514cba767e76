// "@chakra-ui/react" in the built bundle: the host page's Chakra UI (globalThis.ChakraUI), so
// the pages take the UI's theme (and dark mode) and the bundle carries no second copy.
import type * as Chakra from "@chakra-ui/react";

const chakra = (globalThis as unknown as { ChakraUI: typeof Chakra }).ChakraUI;
export const { Badge, Box, Button, HStack, Heading, Input, Link, SimpleGrid, Spinner, Stack, Table, Text, Textarea } =
  chakra;
