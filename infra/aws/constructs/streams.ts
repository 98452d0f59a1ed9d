/**
 * Kinesis streams of the two paths, encrypted at rest; capacity mode and shard count from context.
 * Deleted with the stack (transient data; a retained on-demand stream would keep billing).
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Stream, StreamEncryption, StreamMode } from 'aws-cdk-lib/aws-kinesis';
import { Construct } from 'constructs';

export interface StreamSpec {
  key: string;
  retentionHours: number;
}

export interface StreamsProps {
  streams: StreamSpec[];
  mode: 'provisioned' | 'on-demand';
  shardCount: number;
}

export class Streams extends Construct {
  readonly byKey = new Map<string, Stream>();

  constructor(scope: Construct, id: string, props: StreamsProps) {
    super(scope, id);
    for (const spec of props.streams) {
      const stream = new Stream(this, `${spec.key[0]!.toUpperCase()}${spec.key.slice(1)}Stream`, {
        encryption: StreamEncryption.MANAGED,
        retentionPeriod: Duration.hours(spec.retentionHours),
        // Records live 24 h and a kept stream bills by the hour: `cdk destroy` deletes the streams.
        removalPolicy: RemovalPolicy.DESTROY,
        ...(props.mode === 'on-demand'
          ? { streamMode: StreamMode.ON_DEMAND }
          : { streamMode: StreamMode.PROVISIONED, shardCount: props.shardCount }),
      });
      this.byKey.set(spec.key, stream);
    }
  }

  get(key: string): Stream {
    const stream = this.byKey.get(key);
    if (!stream) throw new Error(`no stream "${key}" in the pipeline definition`);
    return stream;
  }
}
