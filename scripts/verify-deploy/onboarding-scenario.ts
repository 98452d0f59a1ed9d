/**
 * Onboarding steps of the deploy harness (ADR 0018): the functions AWS IoT fleet provisioning and
 * CloudFormation call, run from their bundles with the template's environment and IAM.
 *   - the claim custom resource's onEvent function, with the Create event the CDK provider framework
 *     hands it (the framework itself needs @aws-sdk/client-lambda, which is not installed here):
 *     it must put a key into the claim secret and return a CSR for that key;
 *   - the pre-provisioning hook, with the requests IoT sends it: a registered device (allowed), a
 *     registered device claiming another type (refused), an unknown device (refused, or registered
 *     and allowed when the deployment lets its type register itself — then the API shows it).
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { parseCsr } from '../../functions/core/x509.js';
import type { ScenarioContext } from './scenario.js';
import type { Json } from './template.js';

function fnId(ctx: ScenarioContext, prefix: string): string | undefined {
  return [...ctx.d.functions.keys()].find((id) => id.startsWith(prefix));
}

export async function runOnboardingScenario(
  ctx: ScenarioContext,
  registered: { id: string; type: string },
): Promise<void> {
  const { d } = ctx;
  // ---- claim key and CSR ------------------------------------------------------------------------
  const claimFn = fnId(ctx, 'ClaimCredentialsFunction');
  const claimCr = Object.entries(d.model.template.Resources).find(
    ([id, r]) => id.startsWith('OnboardingClaimCsr') && r.Type === 'AWS::CloudFormation::CustomResource',
  );
  if (!claimFn || !claimCr) {
    ctx.fail('scenario onboarding: no claim function or claim custom resource in the template');
  } else {
    const { ServiceToken, ...props } = d.model.resolve((claimCr[1].Properties ?? {}) as Json) as Record<
      string,
      Json
    >;
    const result = await d.functions.get(claimFn)!.process.invoke({
      RequestType: 'Create',
      ServiceToken,
      ResponseURL: 'https://cloudformation-custom-resource-response.invalid/',
      StackId: d.model.resolve({ Ref: 'AWS::StackId' }) as string,
      RequestId: 'verify-deploy-claim',
      LogicalResourceId: claimCr[0],
      ResourceType: claimCr[1].Type,
      ResourceProperties: { ServiceToken, ...props },
    });
    const out = result.value as { PhysicalResourceId?: string; Data?: { csr?: string } } | undefined;
    const secret = d.secrets.get(String(props.secretArn));
    if (!result.ok || !out?.Data?.csr) {
      ctx.fail(`scenario onboarding: claim function failed: ${result.error?.message ?? JSON.stringify(out)}`);
    } else {
      try {
        const csr = parseCsr(out.Data.csr);
        const key = JSON.parse(secret ?? '{}') as { privateKey?: string };
        const pub = createPublicKey(createPrivateKey(String(key.privateKey)));
        if (!pub.export({ type: 'spki', format: 'der' }).equals(csr.spki))
          ctx.fail('scenario onboarding: the CSR is not for the key put into the claim secret');
        else
          ctx.log(`  claim: CSR for ${csr.commonName} (${out.PhysicalResourceId}); key in the claim secret`);
        if (JSON.stringify(out).includes('PRIVATE KEY'))
          ctx.fail('scenario onboarding: the claim key left the secret');
      } catch (error) {
        ctx.fail(`scenario onboarding: claim CSR/secret: ${(error as Error).message}`);
      }
    }
  }

  // ---- pre-provisioning hook --------------------------------------------------------------------
  const hookId = fnId(ctx, 'ProvisioningHookFunction');
  if (!hookId) {
    ctx.fail('scenario onboarding: no ProvisioningHookFunction in the template');
    return;
  }
  const hook = d.functions.get(hookId)!;
  const templateArn = `arn:aws:iot:${d.model.resolve({ Ref: 'AWS::Region' }) as string}:${d.model.resolve({ Ref: 'AWS::AccountId' }) as string}:provisioningtemplate/${d.model.stackName}-devices`;
  const ask = async (DeviceId: string, DeviceType: string) => {
    const r = await hook.process.invoke({
      claimCertificateId: 'claim0',
      certificateId: 'cert0',
      certificatePem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
      templateArn,
      clientId: 'provision-verify',
      parameters: { DeviceId, DeviceType },
    });
    if (!r.ok) ctx.fail(`scenario onboarding: hook failed for ${DeviceId}: ${r.error?.message}`);
    return r.value as
      | { allowProvisioning?: boolean; parameterOverrides?: Record<string, string> }
      | undefined;
  };
  const known = await ask(registered.id, registered.type);
  if (known?.allowProvisioning !== true || known.parameterOverrides?.DeviceType !== registered.type)
    ctx.fail(`scenario onboarding: registered ${registered.id} not allowed: ${JSON.stringify(known)}`);
  const wrongType = await ask(registered.id, `${registered.type}-other`);
  if (wrongType?.allowProvisioning !== false)
    ctx.fail(`scenario onboarding: ${registered.id} allowed with another type: ${JSON.stringify(wrongType)}`);
  const raw = hook.model.environment.SELF_REGISTER_TYPES ?? 'none';
  const selfTypes = raw === 'none' ? [] : raw.split(',').filter(Boolean);
  const probeType = selfTypes.find((t) => t !== '*') ?? 'unregistered-type';
  const idPrefix = hook.model.environment.SELF_REGISTER_ID_PREFIX ?? '*';
  const probe = `${idPrefix === '*' ? '' : idPrefix}onboarding-probe-1`;
  if (idPrefix !== '*' && selfTypes.length > 0) {
    // Only the simulator's ids register themselves: another id of the same type is refused.
    const outsider = await ask('onboarding-outsider-1', probeType);
    if (outsider?.allowProvisioning !== false)
      ctx.fail(`scenario onboarding: an id outside ${idPrefix} self-registered: ${JSON.stringify(outsider)}`);
  }
  const unknown = await ask(probe, probeType);
  const expectAllowed = selfTypes.length > 0;
  if (unknown?.allowProvisioning !== expectAllowed)
    ctx.fail(
      `scenario onboarding: unknown ${probe} of type ${probeType}: allowProvisioning ${String(unknown?.allowProvisioning)}, expected ${expectAllowed} (SELF_REGISTER_TYPES=${selfTypes.join(',')})`,
    );
  if (expectAllowed) {
    const res = await d.api('GET', `/devices/${probe}`, { key: ctx.adminKey });
    if (res.status !== 200 || res.body.type !== probeType)
      ctx.fail(
        `scenario onboarding: self-registered ${probe} not in the registry: HTTP ${res.status} ${res.raw.slice(0, 200)}`,
      );
  }
  ctx.log(
    `  hook: registered allowed, wrong type refused, unknown ${probeType} ${expectAllowed ? 'registered and allowed' : 'refused'}`,
  );
}
