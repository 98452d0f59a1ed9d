/** S3 objects read whole (the magnetic-store rejection reports, ADR 0024). */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { ReportReader } from '../magnetic-rejects/compose.js';

export class S3ReportReader implements ReportReader {
  constructor(private readonly s3: S3Client = new S3Client({})) {}

  async read(bucket: string, key: string): Promise<Uint8Array> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!res.Body) return new Uint8Array(0);
    return res.Body.transformToByteArray();
  }
}
