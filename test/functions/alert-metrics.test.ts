/** EMF of alert transitions (functions/shared/ingest-function.ts): counts per severity, dimensions kept. */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AlertTransition } from '../../functions/core/rules/index.js';
import { alertMetrics } from '../../functions/shared/ingest-function.js';

const transition = (kind: AlertTransition['kind'], severity: string): AlertTransition =>
  ({ kind, severity }) as AlertTransition;

/** The EMF records written to stdout while `fn` runs. */
function emitted(fn: () => void): Array<Record<string, unknown>> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return lines.flatMap((l) =>
    l
      .split('\n')
      .filter((x) => x.trim() !== '')
      .map((x) => JSON.parse(x)),
  );
}

const dims = (r: Record<string, unknown>) =>
  (r._aws as { CloudWatchMetrics: Array<{ Dimensions: string[][] }> }).CloudWatchMetrics[0]!.Dimensions[0]!;

describe('alertMetrics', () => {
  afterEach(() => vi.restoreAllMocks());

  it('one record per metric and severity per batch, each with its severity, batch after batch', () => {
    const emit = alertMetrics(new Metrics({ namespace: 'Test', serviceName: 'ingest' }));
    for (let batch = 0; batch < 2; batch++) {
      const records = emitted(() =>
        emit([
          transition('open', 'major'),
          transition('open', 'major'),
          transition('resolve', 'major'),
          transition('resolve', 'minor'),
        ]),
      );
      const got = records.map((r) => ({
        severity: r.severity,
        service: r.service,
        dims: [...dims(r)].sort(),
        opened: r.AlertsOpened,
        resolved: r.AlertsResolved,
      }));
      expect(got).toEqual([
        {
          severity: 'major',
          service: 'ingest',
          dims: ['service', 'severity'],
          opened: 2,
          resolved: undefined,
        },
        {
          severity: 'major',
          service: 'ingest',
          dims: ['service', 'severity'],
          opened: undefined,
          resolved: 1,
        },
        {
          severity: 'minor',
          service: 'ingest',
          dims: ['service', 'severity'],
          opened: undefined,
          resolved: 1,
        },
      ]);
    }
  });
});
