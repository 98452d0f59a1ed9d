/**
 * In-memory RegistryPort (tests, tools, benchmarks). Same observable semantics as the DynamoDB adapter
 * (the contract suite in test/adapters/dynamo-registry.contract.test.ts runs against both): values are
 * copied in and out, conditional writes fail with the same errors, lists have the same order.
 */
import { ConflictError, NotFoundError } from './errors.js';
import {
  type Application,
  type Command,
  type CommandPatch,
  type Device,
  type DeviceFilter,
  type DeviceType,
  decodeKeyToken,
  encodePageToken,
  mergeProtocols,
  type Page,
  type RegistryPort,
  type WriteMode,
} from './registry.js';

const clone = <T>(v: T): T => structuredClone(v);
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const byName = (a: Application, b: Application) => (a.name < b.name ? -1 : a.name > b.name ? 1 : byId(a, b));

export class InMemoryRegistry implements RegistryPort {
  readonly devices = new Map<string, Device>();
  readonly types = new Map<string, DeviceType>();
  readonly apps = new Map<string, Application>();
  readonly commands = new Map<string, Command>();
  /** Calls per method, so tests can check a caller's read and write budget. */
  readonly calls: Record<string, number> = {};

  private count(name: string): void {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }

  resetCalls(): void {
    for (const k of Object.keys(this.calls)) delete this.calls[k];
  }

  // ---- devices ---------------------------------------------------------------------------------

  async getDevice(id: string) {
    this.count('getDevice');
    const d = this.devices.get(id);
    return d ? clone(d) : undefined;
  }

  async getDevices(ids: string[]) {
    this.count('getDevices');
    const out = new Map<string, Device>();
    for (const id of ids) {
      const d = this.devices.get(id);
      if (d) out.set(id, clone(d));
    }
    return out;
  }

  async putDevice(device: Device, mode: WriteMode = 'upsert') {
    this.count('putDevice');
    checkMode(mode, this.devices.has(device.id), `device ${device.id}`);
    this.devices.set(device.id, { ...clone(device), protocols: mergeProtocols(device.protocols) });
  }

  async updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>) {
    this.count('updateDevice');
    const d = this.devices.get(id);
    if (!d) return;
    const next = { ...d } as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) next[k] = clone(v);
    // A set-add, as in DynamoDB: protocols are only ever added.
    next.protocols = mergeProtocols(d.protocols, patch.protocols);
    this.devices.set(id, next as unknown as Device);
  }

  async deleteDevice(id: string) {
    this.count('deleteDevice');
    return this.devices.delete(id);
  }

  async listDevices(filter: DeviceFilter): Promise<Page<Device>> {
    this.count('listDevices');
    const after = filter.nextToken ? decodeKeyToken(filter.nextToken, ['id']).id : undefined;
    const limit = Math.min(filter.limit ?? 100, 1000);
    const all = [...this.devices.values()]
      .filter((d) => after === undefined || d.id > after)
      .filter((d) => !filter.type || d.type === filter.type)
      .filter((d) => !filter.protocol || d.protocols.includes(filter.protocol))
      .filter((d) => !filter.status || d.status === filter.status)
      .filter((d) => !filter.group || d.group === filter.group)
      .filter(
        (d) =>
          !filter.tags ||
          Object.entries(filter.tags).every(
            ([k, v]) => d.tags?.[k] !== undefined && (v === undefined || d.tags[k] === v),
          ),
      )
      .sort(byId);
    const items = all.slice(0, limit).map(clone);
    const last = items.at(-1);
    return all.length > limit && last ? { items, nextToken: encodePageToken({ id: last.id }) } : { items };
  }

  // ---- device types ----------------------------------------------------------------------------

  async getDeviceType(id: string) {
    this.count('getDeviceType');
    const t = this.types.get(id);
    return t ? clone(t) : undefined;
  }

  async getTypeWithApps(id: string) {
    this.count('getTypeWithApps');
    const type = this.types.get(id);
    const applications = [...this.apps.values()]
      .filter((a) => a.deviceTypes.includes(id))
      .map((a) => a.id)
      .sort();
    return type ? { type: clone(type), applications } : { applications };
  }

  async putDeviceType(type: DeviceType, mode: WriteMode = 'upsert') {
    this.count('putDeviceType');
    checkMode(mode, this.types.has(type.id), `device type ${type.id}`);
    this.types.set(type.id, clone(type));
  }

  async deleteDeviceType(id: string) {
    this.count('deleteDeviceType');
    if ([...this.devices.values()].some((d) => d.type === id)) {
      throw new ConflictError(`device type "${id}" is still used by devices`, { field: 'type' });
    }
    return this.types.delete(id);
  }

  async listDeviceTypes() {
    this.count('listDeviceTypes');
    return [...this.types.values()].map(clone).sort(byId);
  }

  // ---- applications ----------------------------------------------------------------------------

  async putApplication(app: Application, _previous?: Application) {
    this.count('putApplication');
    this.apps.set(app.id, clone({ ...app, deviceTypes: [...new Set(app.deviceTypes)] }));
  }

  async getApplication(id: string) {
    this.count('getApplication');
    const a = this.apps.get(id);
    return a ? clone(a) : undefined;
  }

  async findApplicationByKeyHash(keyHash: string) {
    this.count('findApplicationByKeyHash');
    const a = [...this.apps.values()].find((x) => x.keyHash === keyHash);
    return a ? clone(a) : undefined;
  }

  async listApplications(filter: { deviceType?: string } = {}) {
    this.count('listApplications');
    return [...this.apps.values()]
      .filter((a) => !filter.deviceType || a.deviceTypes.includes(filter.deviceType))
      .map(clone)
      .sort(byName);
  }

  async deleteApplication(id: string) {
    this.count('deleteApplication');
    return this.apps.delete(id);
  }

  async rotateKey(id: string, key: { keyHash: string; keyPrefix: string; rotatedAt: number }) {
    this.count('rotateKey');
    const app = this.apps.get(id);
    if (!app) throw new NotFoundError(`application ${id} not found`, { field: 'appId' });
    const next: Application = { ...app, ...key };
    this.apps.set(id, next);
    return clone(next);
  }

  // ---- commands --------------------------------------------------------------------------------

  async putCommand(command: Command) {
    this.count('putCommand');
    this.commands.set(commandKey(command.deviceId, command.commandId), clone(command));
  }

  async getCommand(deviceId: string, commandId: string) {
    this.count('getCommand');
    const c = this.commands.get(commandKey(deviceId, commandId));
    return c ? clone(c) : undefined;
  }

  async updateCommand(deviceId: string, commandId: string, patch: CommandPatch) {
    this.count('updateCommand');
    const k = commandKey(deviceId, commandId);
    const c = this.commands.get(k);
    if (c?.status !== 'pending') {
      throw new ConflictError(`command ${commandId} is not pending`, { field: 'commandId' });
    }
    const next: Command = { ...c };
    for (const [f, v] of Object.entries(patch))
      if (v !== undefined) (next as unknown as Record<string, unknown>)[f] = clone(v);
    this.commands.set(k, next);
  }

  async completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ) {
    await this.updateCommand(deviceId, commandId, patch);
  }

  async listCommands(deviceId: string, limit = 50) {
    this.count('listCommands');
    return [...this.commands.values()]
      .filter((c) => c.deviceId === deviceId)
      .sort((a, b) => b.createdAt - a.createdAt || (a.commandId < b.commandId ? 1 : -1))
      .slice(0, limit)
      .map(clone);
  }
}

function commandKey(deviceId: string, commandId: string): string {
  return `${deviceId}\u0000${commandId}`;
}

function checkMode(mode: WriteMode, exists: boolean, what: string): void {
  if (mode === 'create' && exists) throw new ConflictError(`${what} already exists`, { field: 'id' });
  if (mode === 'update' && !exists) throw new NotFoundError(`${what} not found`, { field: 'id' });
}
