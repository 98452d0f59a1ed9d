/**
 * The documented deployment variants (docs/deploy.md): the context each adds on top of the
 * defaults (deploy.config.json, then cdk.json). The deploy harness synthesizes every variant and
 * runs its bundled Lambdas with the template's environment and IAM.
 */
export const DOCUMENTED_VARIANTS: ReadonlyArray<{ name: string; context: Record<string, string> }> = [
  /** A plain `npx cdk deploy`: telemetry in DynamoDB, no simulator, no Docker. */
  { name: 'default', context: {} },
  /** Existing Timestream for LiveAnalytics customers only (closed to new accounts since 2025-06-20). */
  { name: 'timestream', context: { telemetry: 'timestream' } },
  /** The fleet simulator on ECS Fargate (opt-in; image built without local Docker, see ADR 0014). */
  { name: 'simulator', context: { simulatorTasks: '1' } },
];
