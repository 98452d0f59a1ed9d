/**
 * A Lambda handler built at its first invocation (cold start), not at module load: a failing
 * dependency (a throttled secret read) fails that invocation, and the next one builds again.
 *
 * Apart from aws.ts (which re-exports it) so that a function that needs nothing else of aws.ts (the
 * provisioning hook, the live-connections and magnetic-rejects functions) does not bundle the adapters
 * aws.ts loads on first use: esbuild keeps the target of every dynamic import() of a bundled module, used or not, and the
 * deploy harness reads an IoT data-plane client in a bundle as a function that publishes (ADR 0025
 * amendment 2).
 */
export function lazyHandler<E, C, R>(build: () => Promise<(event: E, context: C) => Promise<R>>) {
  let ready: Promise<(event: E, context: C) => Promise<R>> | undefined;
  return async (event: E, context: C): Promise<R> => {
    ready ??= build().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return (await ready)(event, context);
  };
}
