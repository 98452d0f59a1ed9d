/**
 * Whether the local pipeline is healthy, for GET /health: the broker's Kinesis forwarder must not be
 * stuck (records pending and none stored for `stuckAfterMs`), and each stream's consumer must keep
 * up (not more than `lagAfterMs` behind the stream's tip, and records waiting must be read within
 * `stuckAfterMs`). Each problem is one human-readable reason; no reason means healthy.
 */
import type { StreamKey } from '../pipeline.js';

export interface PipelineSample {
  /** Records the broker accepted that are not in Kinesis yet. */
  pendingRecords: number;
  /** How long those records have waited with none stored (0 when none is pending). */
  forwarderStalledMs: number;
  /** Records in Kinesis not yet read by the event-source runners. */
  lagRecords: number;
  /** Records read by the runners so far (progress). */
  recordsRead: number;
  /** Per stream: how far the runner's last read was behind the tip (GetRecords MillisBehindLatest). */
  millisBehind: Record<StreamKey, number>;
}

export interface PipelineHealthOptions {
  clock: () => number;
  /** Pending records with no progress for this long is a stuck forwarder or consumer (default 30 s). */
  stuckAfterMs?: number;
  /** A stream this far behind is lagging (default 60 s). */
  lagAfterMs?: number;
}

export class PipelineHealth {
  private readonly stuckAfterMs: number;
  private readonly lagAfterMs: number;
  private lastRead = -1;
  private readAt = 0;

  constructor(private readonly o: PipelineHealthOptions) {
    this.stuckAfterMs = o.stuckAfterMs ?? 30_000;
    this.lagAfterMs = o.lagAfterMs ?? 60_000;
  }

  /** The reasons the pipeline is degraded now (empty: healthy). Call it with fresh samples. */
  check(s: PipelineSample): string[] {
    const now = this.o.clock();
    const reasons: string[] = [];
    if (s.pendingRecords > 0 && s.forwarderStalledMs >= this.stuckAfterMs) {
      reasons.push(
        `forwarder stuck: ${s.pendingRecords} accepted records not stored in Kinesis for ${seconds(s.forwarderStalledMs)} s`,
      );
    }
    // Consumer progress: records waiting while the read count stands still.
    if (s.recordsRead !== this.lastRead || s.lagRecords === 0) {
      this.lastRead = s.recordsRead;
      this.readAt = now;
    } else if (now - this.readAt >= this.stuckAfterMs) {
      reasons.push(
        `consumers stuck: ${s.lagRecords} records in Kinesis not read for ${seconds(now - this.readAt)} s`,
      );
    }
    for (const [stream, behind] of Object.entries(s.millisBehind)) {
      if (behind >= this.lagAfterMs)
        reasons.push(`stream ${stream} lags: ${seconds(behind)} s behind its tip`);
    }
    return reasons;
  }
}

const seconds = (ms: number) => Math.round(ms / 1000);
