/** DynamoDB tables: on-demand, point-in-time recovery, AWS-managed encryption, TTL where used. */
import type { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

export interface TableSpec {
  name: string;
  ttlAttribute?: string;
  gsis?: Array<{ name: string; pk: string; sk: string }>;
}

export interface TablesProps {
  tables: TableSpec[];
  removalPolicy: RemovalPolicy;
}

export class Tables extends Construct {
  readonly byName = new Map<string, Table>();

  constructor(scope: Construct, id: string, props: TablesProps) {
    super(scope, id);
    for (const spec of props.tables) {
      const table = new Table(this, `${spec.name[0]!.toUpperCase()}${spec.name.slice(1)}Table`, {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        sortKey: { name: 'sk', type: AttributeType.STRING },
        billingMode: BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: TableEncryption.AWS_MANAGED,
        removalPolicy: props.removalPolicy,
        ...(spec.ttlAttribute ? { timeToLiveAttribute: spec.ttlAttribute } : {}),
      });
      for (const gsi of spec.gsis ?? []) {
        table.addGlobalSecondaryIndex({
          indexName: gsi.name,
          partitionKey: { name: gsi.pk, type: AttributeType.STRING },
          sortKey: { name: gsi.sk, type: AttributeType.STRING },
        });
      }
      this.byName.set(spec.name, table);
    }
  }

  get(name: string): Table {
    const table = this.byName.get(name);
    if (!table) throw new Error(`no table "${name}" in the pipeline definition`);
    return table;
  }
}
