/**
 * A local fake of the AWS IoT fleet-provisioning MQTT API, on an aedes broker (plain MQTT on
 * loopback): it enforces the stack's real claim policy document on CONNECT/PUBLISH/SUBSCRIBE, signs
 * CSRs with a test CA (real X.509 certificates), answers on the requesting connection only, calls
 * the real pre-provisioning hook (built through its composition root) and applies the stack's real
 * template body (Ref resolution, thing, certificate activation, policy attachment).
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, randomUUID, sign } from 'node:crypto';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';
import type { PreProvisioningHookRequest } from '../../functions/core/onboarding.js';
import {
  bitString,
  der,
  integer,
  nameCN,
  OID,
  oid,
  parseCsr,
  seq,
  toPem,
} from '../../functions/core/x509.js';
import type { ProvisioningHook } from '../../functions/provisioning-hook/compose.js';
import { claimPolicyDocument, provisioningTemplateBody } from '../../infra/aws/constructs/onboarding.js';
import { iotArn, isAllowed } from './iot-policy.js';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return der(0x17, Buffer.from(s, 'ascii'));
}

/** An X.509 v3 certificate (DER) for `spki`, signed by `issuerKey` (EC P-256). */
export function issueCertificate(o: {
  spki: Buffer;
  subjectCN: string;
  issuerCN: string;
  issuerKey: KeyObject;
}): Buffer {
  const now = Date.now();
  const tbs = seq(
    der(0xa0, integer(2)),
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    seq(oid(OID.ecdsaWithSha256)),
    nameCN(o.issuerCN),
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 365 * 86_400_000))),
    nameCN(o.subjectCN),
    o.spki,
  );
  const sig = sign('sha256', tbs, { key: o.issuerKey, dsaEncoding: 'der' });
  return seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(sig));
}

export interface FakeThing {
  thingName: string;
  thingTypeName: string;
  attributes: Record<string, string>;
  principals: string[];
}

export interface FakeFleetProvisioning {
  url: string;
  templateName: string;
  devicePolicyName: string;
  caPublicKey: KeyObject;
  things: Map<string, FakeThing>;
  certificates: Map<string, { pem: string; status: 'PENDING_ACTIVATION' | 'ACTIVE'; policies: string[] }>;
  hookCalls: PreProvisioningHookRequest[];
  /** Publishes refused by the claim policy (topic or client id). */
  denied: string[];
  /** Answer the next n RegisterThing requests with 429 (throttling). */
  throttleNext(n: number): void;
  close(): Promise<void>;
}

export async function startFakeFleetProvisioning(o: {
  hook: ProvisioningHook;
  templateName?: string;
  devicePolicyName?: string;
  thingTypeName?: string;
}): Promise<FakeFleetProvisioning> {
  const templateName = o.templateName ?? 'test-stack-devices';
  const devicePolicyName = o.devicePolicyName ?? 'test-device-policy';
  const thingTypeName = o.thingTypeName ?? 'test-thing-type';
  const claimPolicy = claimPolicyDocument(REGION, ACCOUNT, templateName);
  const template = provisioningTemplateBody(devicePolicyName, thingTypeName) as {
    Parameters: Record<string, unknown>;
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const arn = iotArn(REGION, ACCOUNT);
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pending = new Map<string, { certificateId: string; pem: string; clientId: string }>();
  const fake: Omit<FakeFleetProvisioning, 'url' | 'close'> = {
    templateName,
    devicePolicyName,
    caPublicKey: ca.publicKey,
    things: new Map(),
    certificates: new Map(),
    hookCalls: [],
    denied: [],
    throttleNext: (n) => {
      throttle = n;
    },
  };
  let throttle = 0;
  const csrTopic = '$aws/certificates/create-from-csr/json';
  const provisionTopic = `$aws/provisioning-templates/${templateName}/provision/json`;

  const aedes = await Aedes.createBroker({
    authenticate: (client, _u, _p, cb) => {
      const ok = isAllowed(claimPolicy, 'iot:Connect', arn('client', client.id), { clientId: client.id });
      if (!ok) fake.denied.push(`connect ${client.id}`);
      cb(null, ok);
    },
    authorizePublish: (client, packet, cb) => {
      const ok =
        client !== null &&
        isAllowed(claimPolicy, 'iot:Publish', arn('topic', packet.topic), { clientId: client.id });
      if (!ok) fake.denied.push(`publish ${packet.topic}`);
      cb(ok ? null : new Error('not authorized'));
    },
    authorizeSubscribe: (client, sub, cb) => {
      const ok =
        client !== null &&
        isAllowed(claimPolicy, 'iot:Subscribe', arn('topicfilter', sub.topic), { clientId: client.id });
      if (!ok) fake.denied.push(`subscribe ${sub.topic}`);
      cb(null, ok ? sub : null);
    },
  });

  const answer = (client: Client, topic: string, body: unknown) => {
    client.publish(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from(JSON.stringify(body)),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
  };

  const resolve = (v: unknown, params: Record<string, string>): unknown => {
    if (v && typeof v === 'object' && 'Ref' in (v as object)) {
      const name = (v as { Ref: string }).Ref;
      if (!(name in params)) throw new Error(`template parameter ${name} has no value`);
      return params[name];
    }
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, resolve(x, params)]));
    return v;
  };

  const register = async (
    client: Client,
    body: { certificateOwnershipToken?: string; parameters?: Record<string, string> },
  ) => {
    const reject = (statusCode: number, errorCode: string, errorMessage: string) =>
      answer(client, `${provisionTopic}/rejected`, { statusCode, errorCode, errorMessage });
    if (throttle > 0) {
      throttle--;
      return reject(429, 'Throttled', 'Rate limit exceeded');
    }
    const cert = body.certificateOwnershipToken ? pending.get(body.certificateOwnershipToken) : undefined;
    if (!cert || cert.clientId !== client.id)
      return reject(400, 'InvalidCertificateOwnershipToken', 'bad token');
    const request: PreProvisioningHookRequest = {
      claimCertificateId: 'claim-cert-id',
      certificateId: cert.certificateId,
      certificatePem: cert.pem,
      templateArn: arn('provisioningtemplate', templateName),
      clientId: client.id,
      parameters: body.parameters ?? {},
    };
    fake.hookCalls.push(request);
    let verdict: Awaited<ReturnType<ProvisioningHook>>;
    try {
      verdict = await o.hook(request);
    } catch {
      return reject(403, 'AccessDenied', 'pre provisioning hook failed');
    }
    if (verdict.allowProvisioning !== true)
      return reject(403, 'AccessDenied', 'denied by the pre provisioning hook');
    const params: Record<string, string> = {
      ...(body.parameters ?? {}),
      ...(verdict.parameterOverrides ?? {}),
      'AWS::IoT::Certificate::Id': cert.certificateId,
    };
    let resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    try {
      for (const p of Object.keys(template.Parameters))
        if (!(p in params)) throw new Error(`parameter ${p} missing`);
      resources = resolve(template.Resources, params) as typeof resources;
    } catch (error) {
      return reject(400, 'InvalidParameters', (error as Error).message);
    }
    pending.delete(body.certificateOwnershipToken!);
    let thingName = '';
    for (const r of Object.values(resources)) {
      if (r.Type === 'AWS::IoT::Thing') {
        thingName = String(r.Properties.ThingName);
        fake.things.set(thingName, {
          thingName,
          thingTypeName: String(r.Properties.ThingTypeName),
          attributes: r.Properties.AttributePayload as Record<string, string>,
          principals: [...(fake.things.get(thingName)?.principals ?? []), cert.certificateId],
        });
      }
    }
    const stored = fake.certificates.get(cert.certificateId)!;
    for (const r of Object.values(resources)) {
      if (r.Type === 'AWS::IoT::Certificate' && r.Properties.Status === 'ACTIVE') stored.status = 'ACTIVE';
      if (r.Type === 'AWS::IoT::Policy') stored.policies.push(String(r.Properties.PolicyName));
    }
    answer(client, `${provisionTopic}/accepted`, { deviceConfiguration: {}, thingName });
  };

  aedes.on('publish', (packet, client) => {
    if (!client) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(packet.payload.toString()) as Record<string, unknown>;
    } catch {
      return;
    }
    if (packet.topic === csrTopic) {
      try {
        const csr = parseCsr(String(body.certificateSigningRequest));
        const certDer = issueCertificate({
          spki: csr.spki,
          subjectCN: 'AWS IoT Certificate',
          issuerCN: 'Fake IoT CA',
          issuerKey: ca.privateKey,
        });
        const certificateId = createHash('sha256').update(certDer).digest('hex');
        const pem = toPem('CERTIFICATE', certDer);
        const token = randomUUID();
        fake.certificates.set(certificateId, { pem, status: 'PENDING_ACTIVATION', policies: [] });
        pending.set(token, { certificateId, pem, clientId: client.id });
        answer(client, `${csrTopic}/accepted`, {
          certificateId,
          certificatePem: pem,
          certificateOwnershipToken: token,
        });
      } catch (error) {
        answer(client, `${csrTopic}/rejected`, {
          statusCode: 400,
          errorCode: 'InvalidCsr',
          errorMessage: (error as Error).message,
        });
      }
    } else if (packet.topic === provisionTopic) {
      void register(client, body);
    }
  });

  const server: Server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    ...fake,
    get denied() {
      return fake.denied;
    },
    url: `mqtt://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
    },
  } as FakeFleetProvisioning;
}
