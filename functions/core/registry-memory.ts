/** In-memory RegistryPort (tests, tools). Same semantics as the DynamoDB adapter. */
import { ConflictError } from './errors.js';
import {
  type Application,
  type Command,
  type Device,
  type DeviceFilter,
  type DeviceType,
  decodePageToken,
  encodePageToken,
  type Page,
  type RegistryPort,
} from './registry.js';

const clone = <T>(v: T): T => structuredClone(v);

export class InMemoryRegistry implements RegistryPort {
  readonly devices = new Map<string, Device>();
  readonly types = new Map<string, DeviceType>();
  readonly apps = new Map<string, Application>();
  readonly commands = new Map<string, Command>();
  /** Counts calls, so tests can check the enricher's read budget. */
  readonly calls: Record<string, number> = {};

  private count(name: string): void {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }

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

  async putDevice(device: Device) {
    this.count('putDevice');
    this.devices.set(device.id, clone(device));
  }

  async updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>) {
    this.count('updateDevice');
    const d = this.devices.get(id);
    if (d) this.devices.set(id, { ...d, ...clone(patch) });
  }

  async deleteDevice(id: string) {
    return this.devices.delete(id);
  }

  async listDevices(filter: DeviceFilter): Promise<Page<Device>> {
    const after = filter.nextToken ? String(decodePageToken(filter.nextToken)) : '';
    const limit = filter.limit ?? 100;
    const all = [...this.devices.values()]
      .filter((d) => d.id > after)
      .filter((d) => !filter.type || d.type === filter.type)
      .filter((d) => !filter.protocol || d.protocols.includes(filter.protocol))
      .filter((d) => !filter.status || d.status === filter.status)
      .filter((d) => !filter.group || d.group === filter.group)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const items = all.slice(0, limit).map(clone);
    const last = items.at(-1);
    return all.length > limit && last ? { items, nextToken: encodePageToken(last.id) } : { items };
  }

  async getDeviceType(id: string) {
    const t = this.types.get(id);
    return t ? clone(t) : undefined;
  }

  async getTypeWithApps(id: string) {
    this.count('getTypeWithApps');
    const type = this.types.get(id);
    const applications = [...this.apps.values()].filter((a) => a.deviceTypes.includes(id)).map((a) => a.id);
    return type ? { type: clone(type), applications } : { applications };
  }

  async putDeviceType(type: DeviceType) {
    this.types.set(type.id, clone(type));
  }

  async deleteDeviceType(id: string) {
    if ([...this.devices.values()].some((d) => d.type === id)) {
      throw new ConflictError(`device type "${id}" is still used by devices`, { field: 'type' });
    }
    return this.types.delete(id);
  }

  async listDeviceTypes() {
    return [...this.types.values()].map(clone).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async putApplication(app: Application) {
    this.apps.set(app.id, clone(app));
  }

  async getApplication(id: string) {
    const a = this.apps.get(id);
    return a ? clone(a) : undefined;
  }

  async findApplicationByKeyHash(keyHash: string) {
    const a = [...this.apps.values()].find((x) => x.keyHash === keyHash);
    return a ? clone(a) : undefined;
  }

  async listApplications(filter: { deviceType?: string } = {}) {
    return [...this.apps.values()]
      .filter((a) => !filter.deviceType || a.deviceTypes.includes(filter.deviceType))
      .map(clone)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async deleteApplication(id: string) {
    return this.apps.delete(id);
  }

  async putCommand(command: Command) {
    this.commands.set(`${command.deviceId}\u0000${command.commandId}`, clone(command));
  }

  async getCommand(deviceId: string, commandId: string) {
    const c = this.commands.get(`${deviceId}\u0000${commandId}`);
    return c ? clone(c) : undefined;
  }

  async completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ) {
    const k = `${deviceId}\u0000${commandId}`;
    const c = this.commands.get(k);
    if (!c || c.status !== 'pending') throw new ConflictError(`command ${commandId} is not pending`);
    this.commands.set(k, { ...c, ...clone(patch) });
  }

  async listCommands(deviceId: string, limit = 50) {
    return [...this.commands.values()]
      .filter((c) => c.deviceId === deviceId)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map(clone);
  }
}
