/**
 * Where operations and their targets are kept: the port, and the in-memory implementation used by unit
 * tests. The DynamoDB adapter (functions/adapters/dynamo-operations.ts) keeps them in the registry table.
 */
import { ConflictError } from '../errors.js';
import type { Operation, Target } from './model.js';

export interface OperationStore {
  /** Writes a new operation and all its targets. */
  createOperation(op: Operation, targets: Target[]): Promise<void>;
  getOperation(id: string): Promise<Operation | undefined>;
  /** Replaces the operation if its stored version is `expectedVersion` (ConflictError otherwise); bumps it. */
  putOperation(op: Operation, expectedVersion: number): Promise<Operation>;
  /** Newest first; `appId`: only the operations that application started. */
  listOperations(limit: number, appId?: string): Promise<Operation[]>;
  /** Operations the worker still has to drive (running or cancelling). */
  listActive(): Promise<Operation[]>;
  listTargets(operationId: string): Promise<Target[]>;
  putTargets(targets: Target[]): Promise<void>;
}

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryOperationStore implements OperationStore {
  private readonly ops = new Map<string, Operation>();
  private readonly targets = new Map<string, Map<string, Target>>();

  async createOperation(op: Operation, targets: Target[]): Promise<void> {
    if (this.ops.has(op.id)) throw new ConflictError(`operation ${op.id} exists`);
    this.ops.set(op.id, clone(op));
    this.targets.set(op.id, new Map(targets.map((t) => [t.deviceId, clone(t)])));
  }

  async getOperation(id: string): Promise<Operation | undefined> {
    const op = this.ops.get(id);
    return op && clone(op);
  }

  async putOperation(op: Operation, expectedVersion: number): Promise<Operation> {
    const cur = this.ops.get(op.id);
    if (!cur || cur.version !== expectedVersion)
      throw new ConflictError(`operation ${op.id} changed (version ${cur?.version ?? 'none'})`);
    const next = { ...clone(op), version: expectedVersion + 1 };
    this.ops.set(op.id, next);
    return clone(next);
  }

  async listOperations(limit: number, appId?: string): Promise<Operation[]> {
    return [...this.ops.values()]
      .filter((o) => appId === undefined || o.appId === appId)
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))
      .slice(0, limit)
      .map(clone);
  }

  async listActive(): Promise<Operation[]> {
    return [...this.ops.values()]
      .filter((o) => o.status === 'running' || o.status === 'cancelling')
      .map(clone);
  }

  async listTargets(operationId: string): Promise<Target[]> {
    return [...(this.targets.get(operationId)?.values() ?? [])]
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1))
      .map(clone);
  }

  async putTargets(targets: Target[]): Promise<void> {
    for (const t of targets) {
      const m = this.targets.get(t.operationId);
      if (m) m.set(t.deviceId, clone(t));
    }
  }
}
