/**
 * Device shadows (ADR 0023) on the registry table: one item per device, pk `SHADOW#<id>`, sk `SHADOW`,
 * written with an optimistic version check (ConflictError when another writer got there first).
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ShadowDoc, ShadowStore } from '../core/shadow.js';
import { mapAwsError } from './dynamo-errors.js';

const SK = 'SHADOW';

export class DynamoShadowStore implements ShadowStore {
  constructor(private readonly o: { client: DynamoDBDocumentClient; tableName: string }) {}

  async get(deviceId: string): Promise<ShadowDoc | undefined> {
    try {
      const out = await this.o.client.send(
        new GetCommand({
          TableName: this.o.tableName,
          Key: { pk: `SHADOW#${deviceId}`, sk: SK },
          ConsistentRead: true,
        }),
      );
      return out.Item?.shadow as ShadowDoc | undefined;
    } catch (error) {
      throw mapAwsError(error, `get shadow ${deviceId}`);
    }
  }

  async put(doc: ShadowDoc, expectedVersion: number): Promise<void> {
    try {
      await this.o.client.send(
        new PutCommand({
          TableName: this.o.tableName,
          Item: { pk: `SHADOW#${doc.deviceId}`, sk: SK, version: doc.version, shadow: doc },
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': expectedVersion } }),
        }),
      );
    } catch (error) {
      throw mapAwsError(error, `shadow of ${doc.deviceId} changed meanwhile`);
    }
  }
}
