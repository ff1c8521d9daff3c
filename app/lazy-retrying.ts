/**
 * A value a Lambda builds on its first invocation rather than at import (it reads secrets, say): later invocations
 * share the one build, and a failed build is forgotten, so it fails that invocation only and the next one retries
 * instead of the container failing its init.
 */
export function lazyRetrying<T>(build: () => Promise<T>): () => Promise<T> {
  let built: Promise<T> | undefined;
  return () => {
    built ??= build().catch((error: unknown) => {
      built = undefined;
      throw error;
    });
    return built;
  };
}
