/**
 * The only place MQTT topics are built or parsed. Sparkplug B 3.0 (spBv1.0/...) and the OMA LwM2M 1.2
 * MQTT binding ([PREFIX/]lwm2m/{rd|bs}/{endpoint}). Everything else imports from here.
 */
import { ProtocolError } from './errors.js';

export const SPARKPLUG_NAMESPACE = 'spBv1.0';

export const SPARKPLUG_MESSAGE_TYPES = [
  'NBIRTH',
  'NDATA',
  'NDEATH',
  'NCMD',
  'DBIRTH',
  'DDATA',
  'DDEATH',
  'DCMD',
] as const;
export type SparkplugMessageType = (typeof SPARKPLUG_MESSAGE_TYPES)[number];

export type SparkplugTopic =
  | { kind: 'state'; hostId: string }
  | { kind: 'message'; group: string; type: SparkplugMessageType; node: string; device?: string };

export type Lwm2mInterface = 'rd' | 'bs';
export interface Lwm2mTopic {
  prefix?: string;
  iface: Lwm2mInterface;
  endpoint: string;
}

export type ParsedTopic =
  | { protocol: 'sparkplug'; topic: SparkplugTopic }
  | { protocol: 'lwm2m'; topic: Lwm2mTopic };

const NODE_TYPES = new Set<string>(['NBIRTH', 'NDATA', 'NDEATH', 'NCMD']);

/** Sparkplug IDs: non-empty UTF-8 without the MQTT special characters +, / and #. */
export function isValidSparkplugId(id: string): boolean {
  return id.length > 0 && !/[+/#]/.test(id);
}

/**
 * LwM2M endpoint names as used in our topics and as IoT thing names: 1-128 characters of
 * [A-Za-z0-9_:.-] (the IoT thing-name alphabet; also covers URNs such as urn:dev:ops:...).
 */
export function isValidEndpoint(endpoint: string): boolean {
  return /^[A-Za-z0-9_:.-]{1,128}$/.test(endpoint);
}

function fail(code: string, message: string): never {
  throw new ProtocolError(code, message, { field: 'topic' });
}

export function parseSparkplugTopic(topic: string): SparkplugTopic {
  const parts = topic.split('/');
  if (parts[0] !== SPARKPLUG_NAMESPACE)
    fail('TOPIC_NAMESPACE', `topic "${topic}" is not in ${SPARKPLUG_NAMESPACE}`);
  if (parts[1] === 'STATE') {
    // 3.0: spBv1.0/STATE/{host_id}
    if (parts.length !== 3 || !isValidSparkplugId(parts[2] ?? '')) {
      fail('TOPIC_STATE', `STATE topic "${topic}" must be spBv1.0/STATE/{host_id}`);
    }
    return { kind: 'state', hostId: parts[2]! };
  }
  if (parts.length !== 4 && parts.length !== 5) {
    fail('TOPIC_LEVELS', `Sparkplug topic "${topic}" must have 4 or 5 levels`);
  }
  const [, group, type, node, device] = parts as [string, string, string, string, string | undefined];
  if (!(SPARKPLUG_MESSAGE_TYPES as readonly string[]).includes(type)) {
    fail('TOPIC_MESSAGE_TYPE', `unknown Sparkplug message type "${type}" in topic "${topic}"`);
  }
  if (!isValidSparkplugId(group)) fail('TOPIC_GROUP', `invalid group_id in topic "${topic}"`);
  if (!isValidSparkplugId(node)) fail('TOPIC_NODE', `invalid edge_node_id in topic "${topic}"`);
  const nodeLevel = NODE_TYPES.has(type);
  if (nodeLevel && device !== undefined)
    fail('TOPIC_LEVELS', `${type} topic "${topic}" must not name a device`);
  if (!nodeLevel && device === undefined) fail('TOPIC_LEVELS', `${type} topic "${topic}" must name a device`);
  if (device !== undefined && !isValidSparkplugId(device))
    fail('TOPIC_DEVICE', `invalid device_id in "${topic}"`);
  const parsed: SparkplugTopic = { kind: 'message', group, type: type as SparkplugMessageType, node };
  if (device !== undefined) parsed.device = device;
  return parsed;
}

export function sparkplugTopic(
  group: string,
  type: SparkplugMessageType,
  node: string,
  device?: string,
): string {
  for (const [name, id] of [
    ['group', group],
    ['node', node],
  ] as const) {
    if (!isValidSparkplugId(id)) throw new ProtocolError('TOPIC_ID', `invalid Sparkplug ${name} id "${id}"`);
  }
  if (NODE_TYPES.has(type)) return `${SPARKPLUG_NAMESPACE}/${group}/${type}/${node}`;
  if (device === undefined || !isValidSparkplugId(device)) {
    throw new ProtocolError('TOPIC_ID', `${type} needs a valid device id`);
  }
  return `${SPARKPLUG_NAMESPACE}/${group}/${type}/${node}/${device}`;
}

export function sparkplugStateTopic(hostId: string): string {
  return `${SPARKPLUG_NAMESPACE}/STATE/${hostId}`;
}

/** Kinesis partition key for Sparkplug: one edge node → one shard, in order (`${topic(2)}/${topic(4)}`). */
export function sparkplugPartitionKey(group: string, node: string): string {
  return `${group}/${node}`;
}

/**
 * AWS IoT Basic Ingest (ADR 0024): a publish to `$aws/rules/{rule}/{topic}` goes to that one rule only —
 * never through the publish/subscribe broker, so no subscriber (the sender included) receives it and
 * it carries no messaging charge. The rule sees `{topic}`; the prefix is not part of topic(n).
 */
export const BASIC_INGEST_PREFIX = '$aws/rules/';

/** IoT rule names: [A-Za-z0-9_], 1-128 characters. */
export function isValidRuleName(name: string): boolean {
  return /^[A-Za-z0-9_]{1,128}$/.test(name);
}

export function basicIngestTopic(rule: string, topic: string): string {
  if (!isValidRuleName(rule)) throw new ProtocolError('TOPIC_RULE', `invalid IoT rule name "${rule}"`);
  return `${BASIC_INGEST_PREFIX}${rule}/${topic}`;
}

/** `$aws/rules/{rule}/{topic}` → { rule, topic }; any other topic → { topic } unchanged. */
export function splitBasicIngest(topic: string): { rule?: string; topic: string } {
  if (!topic.startsWith(BASIC_INGEST_PREFIX)) return { topic };
  const rest = topic.slice(BASIC_INGEST_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return { topic };
  return { rule: rest.slice(0, slash), topic: rest.slice(slash + 1) };
}

/** The topic a device publishes its LwM2M uplinks on: Basic Ingest into `rule`, or the binding topic. */
export function lwm2mUplinkTopic(endpoint: string, rule?: string): string {
  return rule === undefined ? lwm2mTopic(endpoint) : basicIngestTopic(rule, lwm2mTopic(endpoint));
}

export function parseLwm2mTopic(topic: string): Lwm2mTopic {
  // A Basic Ingest prefix is routing, not the binding's PREFIX: replies never go to $aws/rules/...
  topic = splitBasicIngest(topic).topic;
  const parts = topic.split('/');
  const at = parts.lastIndexOf('lwm2m', parts.length - 3);
  if (at < 0 || parts.length - at !== 3)
    fail('TOPIC_LWM2M', `topic "${topic}" is not [PREFIX/]lwm2m/{rd|bs}/{endpoint}`);
  const iface = parts[at + 1];
  const endpoint = parts[at + 2] ?? '';
  if (iface !== 'rd' && iface !== 'bs')
    fail('TOPIC_LWM2M_IFACE', `LwM2M interface "${iface}" must be rd or bs`);
  if (!isValidEndpoint(endpoint))
    fail('TOPIC_ENDPOINT', `invalid LwM2M endpoint "${endpoint}" in topic "${topic}"`);
  const parsed: Lwm2mTopic = { iface, endpoint };
  if (at > 0) parsed.prefix = parts.slice(0, at).join('/');
  return parsed;
}

export function lwm2mTopic(endpoint: string, iface: Lwm2mInterface = 'rd', prefix?: string): string {
  if (!isValidEndpoint(endpoint))
    throw new ProtocolError('TOPIC_ENDPOINT', `invalid LwM2M endpoint "${endpoint}"`);
  return `${prefix ? `${prefix}/` : ''}lwm2m/${iface}/${endpoint}`;
}

/** Which protocol tree a topic belongs to, parsed; throws ProtocolError for anything else. */
export function parseTopic(topic: string): ParsedTopic {
  if (topic.startsWith(`${SPARKPLUG_NAMESPACE}/`))
    return { protocol: 'sparkplug', topic: parseSparkplugTopic(topic) };
  if (/(^|\/)lwm2m\//.test(topic)) return { protocol: 'lwm2m', topic: parseLwm2mTopic(topic) };
  return fail('TOPIC_UNKNOWN', `topic "${topic}" is neither Sparkplug B nor LwM2M`);
}

/**
 * The topics a device with this thing name may use (the same rule as the IoT policy): its own Sparkplug
 * edge node (any group) and its own LwM2M endpoint — on the binding topic, or through Basic Ingest into
 * the LwM2M rule (`lwm2mRule`, when given). Used by the local broker's authorizer.
 */
export function deviceMayPublish(thingName: string, topic: string, lwm2mRule?: string): boolean {
  if (topic.startsWith('$')) {
    const split = splitBasicIngest(topic);
    return (
      lwm2mRule !== undefined &&
      split.rule === lwm2mRule &&
      split.topic.startsWith('lwm2m/') &&
      deviceMayPublish(thingName, split.topic)
    );
  }
  try {
    const parsed = parseTopic(topic);
    if (parsed.protocol === 'sparkplug') {
      return (
        parsed.topic.kind === 'message' &&
        parsed.topic.node === thingName &&
        !parsed.topic.type.endsWith('CMD')
      );
    }
    return parsed.topic.endpoint === thingName && parsed.topic.prefix === undefined;
  } catch {
    return false;
  }
}

/** Subscriptions a device may make: its NCMD/DCMD topics and its own LwM2M endpoint topic. */
export function deviceMaySubscribe(thingName: string, filter: string): boolean {
  const parts = filter.split('/');
  if (parts[0] === SPARKPLUG_NAMESPACE) {
    if (parts[1] === 'STATE') return parts.length === 3 && !filter.includes('#');
    // spBv1.0/{group}/NCMD/{node} or spBv1.0/{group}/DCMD/{node}/{device|+}
    const [, group, type, node, device] = parts;
    if (group === undefined || group === '#' || node !== thingName) return false;
    if (type === 'NCMD') return parts.length === 4;
    if (type === 'DCMD') return parts.length === 5 && device !== '#';
    return false;
  }
  return filter === lwm2mTopicSafe(thingName);
}

function lwm2mTopicSafe(endpoint: string): string | undefined {
  return isValidEndpoint(endpoint) ? lwm2mTopic(endpoint) : undefined;
}
