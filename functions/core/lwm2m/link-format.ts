/**
 * CoRE Link Format (RFC 6690) and the LwM2M object list carried by Register/Update (Core §6.2.1):
 * `</>;ct="110 112",</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>` or with an alternate path
 * `</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,...`.
 *
 * Grammar (RFC 6690 §2): links separated by ','; a link is '<' URI-reference '>' then ';'-separated
 * params `name[=value]`, value a token or a quoted string (which may contain ',' ';' and '\' escapes).
 * Whitespace around separators is tolerated. A valueless param is `true`.
 *
 * Errors: DecodeError LINK_FORMAT (field "links[i]" or "links[i].<param>").
 */
import { DecodeError } from '../errors.js';

export interface Link {
  target: string;
  params: Record<string, string | true>;
}

export interface ObjectList {
  objects: { id: number; version?: string; instances: number[] }[];
  rootContentFormats?: number[];
  altPath?: string;
}

function fail(message: string, field: string): never {
  throw new DecodeError('LINK_FORMAT', `link format: ${message}`, { field });
}

const PARAM_NAME = /[A-Za-z0-9!#$&+\-.^_`|~*]/;

export function parseLinkFormat(text: string): Link[] {
  const links: Link[] = [];
  let i = 0;
  const n = text.length;
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r' || text[i] === '\n')) i++;
  };
  ws();
  if (i === n) return links;
  while (true) {
    const idx = links.length;
    const field = `links[${idx}]`;
    ws();
    if (text[i] !== '<') fail(`link ${idx} must start with "<" at offset ${i}`, field);
    const close = text.indexOf('>', i + 1);
    if (close < 0) fail(`link ${idx} has no closing ">"`, field);
    const target = text.slice(i + 1, close);
    if (/[<\s"]/.test(target)) fail(`link ${idx} target "${target}" contains an invalid character`, field);
    i = close + 1;
    const params: Record<string, string | true> = {};
    ws();
    while (text[i] === ';') {
      i++;
      ws();
      const start = i;
      while (i < n && PARAM_NAME.test(text[i]!)) i++;
      const name = text.slice(start, i);
      if (name === '') fail(`link ${idx} has a parameter without a name at offset ${start}`, field);
      const pfield = `${field}.${name}`;
      ws();
      let value: string | true = true;
      if (text[i] === '=') {
        i++;
        ws();
        if (text[i] === '"') {
          i++;
          let v = '';
          while (true) {
            if (i >= n) fail(`link ${idx} parameter ${name} has an unterminated quoted string`, pfield);
            const c = text[i]!;
            if (c === '\\') {
              if (i + 1 >= n) fail(`link ${idx} parameter ${name} ends in an escape`, pfield);
              v += text[i + 1];
              i += 2;
            } else if (c === '"') {
              i++;
              break;
            } else {
              v += c;
              i++;
            }
          }
          value = v;
        } else {
          const s = i;
          while (i < n && text[i] !== ';' && text[i] !== ',' && text[i] !== ' ' && text[i] !== '"') i++;
          value = text.slice(s, i);
          if (value === '') fail(`link ${idx} parameter ${name} has "=" but no value`, pfield);
        }
      }
      params[name] = value;
      ws();
    }
    links.push({ target, params });
    if (i >= n) return links;
    if (text[i] !== ',')
      fail(`link ${idx} is followed by "${text[i]}" at offset ${i}, expected "," or ";"`, field);
    i++;
    ws();
    if (i >= n) fail('trailing "," after the last link', `links[${idx + 1}]`);
  }
}

const ID = /^(0|[1-9]\d{0,4})$/;
const VERSION = /^\d+\.\d+$/;

function parseCt(v: string | true, field: string): number[] {
  if (v === true) fail('ct needs a value', field);
  const parts = v.trim().split(/\s+/);
  return parts.map((p) => {
    if (!/^\d{1,5}$/.test(p)) fail(`ct "${v}" is not a list of content-format numbers`, field);
    return Number(p);
  });
}

/**
 * The LwM2M object list of a Register/Update payload. The root link `</>` (or the alternate-path link)
 * may carry `ct`; a link with rt="oma.lwm2m" declares the alternate path under which every object link
 * then lives. Object links are `/oid` or `/oid/iid` (deeper links are tolerated and count as their
 * instance); `ver` on the object or an instance link gives the object version.
 */
/**
 * Bounds of an object list: a registration is one DynamoDB item (≤ 400 KB), and a real client registers
 * tens of objects and instances, not thousands.
 */
export const MAX_OBJECT_LIST_CHARS = 65_536;
export const MAX_OBJECT_LINKS = 2_000;

export function parseObjectList(text: string): ObjectList {
  if (text.length > MAX_OBJECT_LIST_CHARS)
    fail(`object list of ${text.length} characters exceeds ${MAX_OBJECT_LIST_CHARS}`, 'payload');
  const links = parseLinkFormat(text);
  if (links.length > MAX_OBJECT_LINKS)
    fail(`object list of ${links.length} links exceeds ${MAX_OBJECT_LINKS}`, 'payload');
  const list: ObjectList = { objects: [] };
  links.forEach((l, i) => {
    if (l.params.rt === 'oma.lwm2m') {
      if (list.altPath !== undefined) fail('more than one rt="oma.lwm2m" link', `links[${i}].rt`);
      const alt = l.target.replace(/\/+$/, '');
      if (!alt.startsWith('/')) fail(`alternate path "${l.target}" must start with "/"`, `links[${i}]`);
      if (alt !== '') list.altPath = alt;
    }
  });
  const byId = new Map<number, { id: number; version?: string; instances: number[] }>();
  const prefix = list.altPath ?? '';
  links.forEach((l, i) => {
    const field = `links[${i}]`;
    const isRoot = l.target === '/' || (list.altPath !== undefined && l.params.rt === 'oma.lwm2m');
    if (isRoot) {
      if (l.params.ct !== undefined) list.rootContentFormats = parseCt(l.params.ct, `${field}.ct`);
      return;
    }
    if (prefix !== '' && !l.target.startsWith(`${prefix}/`)) {
      fail(`link target "${l.target}" is outside the alternate path ${prefix}`, field);
    }
    const rest = l.target.slice(prefix.length);
    if (!rest.startsWith('/')) fail(`link target "${l.target}" must start with "/"`, field);
    const segs = rest.slice(1).split('/');
    for (const s of segs) {
      if (!ID.test(s) || Number(s) > 65535)
        fail(`link target "${l.target}" is not an LwM2M object path`, field);
    }
    const id = Number(segs[0]);
    let obj = byId.get(id);
    if (obj === undefined) {
      obj = { id, instances: [] };
      byId.set(id, obj);
      list.objects.push(obj);
    }
    if (segs.length > 1) {
      const iid = Number(segs[1]);
      if (!obj.instances.includes(iid)) obj.instances.push(iid);
    }
    const ver = l.params.ver;
    if (ver !== undefined) {
      if (ver === true || !VERSION.test(ver))
        fail(`ver must be "major.minor", got ${String(ver)}`, `${field}.ver`);
      obj.version = ver;
    }
  });
  for (const o of list.objects) o.instances.sort((a, b) => a - b);
  return list;
}

/** Formats an object list as a Register payload (the inverse of parseObjectList). */
export function formatObjectList(list: ObjectList): string {
  const out: string[] = [];
  const prefix = list.altPath ?? '';
  const ct = list.rootContentFormats;
  const ctParam =
    ct === undefined || ct.length === 0 ? '' : ct.length === 1 ? `;ct=${ct[0]}` : `;ct="${ct.join(' ')}"`;
  if (prefix !== '') out.push(`<${prefix}>;rt="oma.lwm2m"${ctParam}`);
  else if (ctParam !== '') out.push(`</>${ctParam}`);
  for (const o of list.objects) {
    if (o.instances.length === 0 || o.version !== undefined) {
      out.push(`<${prefix}/${o.id}>${o.version !== undefined ? `;ver=${o.version}` : ''}`);
    }
    for (const iid of o.instances) out.push(`<${prefix}/${o.id}/${iid}>`);
  }
  return out.join(',');
}
