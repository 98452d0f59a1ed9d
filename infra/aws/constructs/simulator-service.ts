/**
 * The fleet simulator on ECS Fargate (opt-in: only with -c simulatorTasks>0, ADR 0014 — its image is
 * built from simulator/Dockerfile by a local Docker engine at deploy time): cluster (Container
 * Insights), task definition, a service at the requested desired count, device credentials from
 * Secrets Manager (created at deploy time by the provisioner custom resource), least-privilege task
 * role (it needs nothing but its secret: devices authenticate to IoT Core with mutual TLS), logs.
 */
import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { FlowLogDestination, FlowLogTrafficType, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import {
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  Secret as EcsSecret,
  FargateService,
  FargateTaskDefinition,
  LogDriver,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

export interface SimulatorServiceProps {
  repoRoot: string;
  desiredCount: number;
  devices: number;
  rate: number;
  thingPrefix: string;
  thingTypeName: string;
  policyName: string;
  provisioner: NodejsFunction;
  logRetention: RetentionDays;
}

export class SimulatorService extends Construct {
  readonly service: FargateService;
  readonly secret: Secret;
  readonly taskDefinition: FargateTaskDefinition;
  readonly provisioner: NodejsFunction;
  readonly thingPrefix: string;

  constructor(scope: Construct, id: string, props: SimulatorServiceProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.provisioner = props.provisioner;
    this.thingPrefix = props.thingPrefix;
    const vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
      flowLogs: {
        all: { destination: FlowLogDestination.toCloudWatchLogs(), trafficType: FlowLogTrafficType.REJECT },
      },
    });
    const cluster = new Cluster(this, 'Cluster', { vpc, containerInsightsV2: ContainerInsights.ENABLED });

    // Device credentials: the provisioner creates the things and one fleet certificate at deploy time
    // and writes {certificatePem, privateKey, endpoint} into this secret; nothing secret is in the template.
    this.secret = new Secret(this, 'DeviceCredentials', {
      description: 'Dualpath simulator device certificate, key and IoT endpoint (written by the provisioner)',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.secret.grantWrite(props.provisioner);
    props.provisioner.addToRolePolicy(
      new PolicyStatement({
        actions: [
          'iot:CreateThing',
          'iot:DeleteThing',
          'iot:AttachThingPrincipal',
          'iot:DetachThingPrincipal',
          'iot:AttachPolicy',
          'iot:DetachPolicy',
          'iot:UpdateCertificate',
          'iot:DeleteCertificate',
        ],
        resources: [
          `arn:aws:iot:${stack.region}:${stack.account}:thing/${props.thingPrefix}*`,
          `arn:aws:iot:${stack.region}:${stack.account}:cert/*`,
          `arn:aws:iot:${stack.region}:${stack.account}:policy/${props.policyName}`,
          `arn:aws:iot:${stack.region}:${stack.account}:thingtype/${props.thingTypeName}`,
        ],
      }),
    );
    props.provisioner.addToRolePolicy(
      new PolicyStatement({
        // These IoT actions have no resource-level permissions.
        actions: ['iot:CreateKeysAndCertificate', 'iot:DescribeEndpoint'],
        resources: ['*'],
      }),
    );
    const provider = new Provider(this, 'ProvisionerProvider', { onEventHandler: props.provisioner });
    new CustomResource(this, 'Devices', {
      serviceToken: provider.serviceToken,
      properties: {
        thingPrefix: props.thingPrefix,
        count: props.devices,
        thingTypeName: props.thingTypeName,
        policyName: props.policyName,
        secretArn: this.secret.secretArn,
      },
    });

    const task = new FargateTaskDefinition(this, 'Task', {
      cpu: 1024,
      memoryLimitMiB: 2048,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    this.taskDefinition = task;
    this.secret.grantRead(task.taskRole);
    task.addContainer('simulator', {
      image: ContainerImage.fromAsset(props.repoRoot, {
        file: path.join('simulator', 'Dockerfile'),
        exclude: ['node_modules', 'cdk.out', '.dualpath', '.git', 'test-results', 'docs'],
      }),
      logging: LogDriver.awsLogs({
        streamPrefix: 'simulator',
        logGroup: new LogGroup(this, 'Logs', {
          retention: props.logRetention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      }),
      environment: {
        SIM_DEVICES: String(props.devices),
        SIM_RATE: String(props.rate),
        SIM_THING_PREFIX: props.thingPrefix,
      },
      secrets: { DEVICE_CREDENTIALS: EcsSecret.fromSecretsManager(this.secret) },
      stopTimeout: Duration.seconds(60),
    });
    this.service = new FargateService(this, 'Service', {
      cluster,
      taskDefinition: task,
      desiredCount: props.desiredCount,
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      minHealthyPercent: 0,
      circuitBreaker: { rollback: true },
    });
  }
}
