/** Lambda entry point of the pre-provisioning hook: the composition root (compose.ts) over DynamoDB. */
import { DynamoRegistry } from '../adapters/dynamo-registry.js';
import { parseTypeList } from '../core/onboarding.js';
import { dynamoDocumentClient, loadConfig } from '../shared/aws-base.js';
import { functionLogger, lambdaEntry } from '../shared/lambda-entry.js';
import { lazyHandler } from '../shared/lazy-handler.js';
import { composeProvisioningHook } from './compose.js';

export const handler = lambdaEntry(
  functionLogger(),
  lazyHandler(async () => {
    const registry = new DynamoRegistry({
      client: dynamoDocumentClient(),
      tableName: loadConfig().REGISTRY_TABLE,
    });
    return composeProvisioningHook(
      { registry, clock: Date.now },
      {
        selfRegisterTypes: parseTypeList(process.env.SELF_REGISTER_TYPES),
        // '*': any id.
        selfRegisterIdPrefix:
          process.env.SELF_REGISTER_ID_PREFIX === '*' ? undefined : process.env.SELF_REGISTER_ID_PREFIX,
      },
    );
  }),
);
