import { Text } from "@chakra-ui/react";

/** A field's error under it (nothing when it has none); ``error-<name>`` for tests. */
export function FieldError({ name, errors }: { name: string; errors: Record<string, string> }) {
  return errors[name] ? (
    <Text color="fg.error" fontSize="sm" data-testid={`error-${name}`}>
      {errors[name]}
    </Text>
  ) : null;
}
