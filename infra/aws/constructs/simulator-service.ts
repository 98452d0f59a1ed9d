/**
 * The fleet simulator on ECS Fargate (opt-in: only with -c simulatorTasks>0, ADR 0014 — its image is
 * built from simulator/Dockerfile by a local Docker engine at deploy time, for linux/arm64 like the
 * task). Since ADR 0018 every simulated device onboards itself as a real device does: at start-up
 * each task provisions its devices by claim through the stack's provisioning template (their own
 * key, certificate and thing; the hook registers them), paced under the provisioning rate and
 * resumable; thing names and client ids carry the task's id, so tasks never share a client id.
 * The task role may read the claim key's secret and describe the one claim certificate — nothing
 * else: devices authenticate to IoT Core with mutual TLS. The service starts only after the
 * template, the claim certificate and its policy exist.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { FlowLogDestination, FlowLogTrafficType, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  FargateService,
  FargateTaskDefinition,
  LogDriver,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { DeviceOnboarding } from './onboarding.js';

export interface SimulatorServiceProps {
  repoRoot: string;
  desiredCount: number;
  /** Devices per task (the `simulatorDevices` setting). */
  devices: number;
  rate: number;
  thingPrefix: string;
  iotEndpoint: string;
  /** The LwM2M rule's name: devices publish LwM2M uplinks by Basic Ingest into it (ADR 0024). */
  lwm2mIngestRule?: string;
  onboarding: DeviceOnboarding;
  /** RegisterThing requests per second over all tasks (default 10). */
  provisionRate?: number;
  logRetention: RetentionDays;
}

export class SimulatorService extends Construct {
  readonly service: FargateService;
  readonly taskDefinition: FargateTaskDefinition;
  readonly thingPrefix: string;

  constructor(scope: Construct, id: string, props: SimulatorServiceProps) {
    super(scope, id);
    const stack = Stack.of(this);
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

    const task = new FargateTaskDefinition(this, 'Task', {
      cpu: 1024,
      memoryLimitMiB: 2048,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    this.taskDefinition = task;
    const onb = props.onboarding;
    onb.claimSecret.grantRead(task.taskRole);
    task.taskRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadClaimCertificate',
        actions: ['iot:DescribeCertificate'],
        resources: [onb.claimCertificate.attrArn],
      }),
    );
    const tasks = Math.max(1, props.desiredCount);
    task.addContainer('simulator', {
      image: ContainerImage.fromAsset(props.repoRoot, {
        file: path.join('simulator', 'Dockerfile'),
        // The task runs on ARM64 (Graviton): build the image for it whatever the build host is.
        platform: Platform.LINUX_ARM64,
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
        IOT_ENDPOINT: props.iotEndpoint,
        ...(props.lwm2mIngestRule ? { SIM_LWM2M_INGEST_RULE: props.lwm2mIngestRule } : {}),
        PROVISIONING_TEMPLATE: onb.templateName,
        CLAIM_CERTIFICATE_ID: onb.claimCertificateId,
        CLAIM_KEY_SECRET: onb.claimSecret.secretArn,
        // The account's provisioning rate shared by the tasks.
        SIM_PROVISION_RATE: String(Math.max(0.1, (props.provisionRate ?? 10) / tasks)),
        AWS_REGION: stack.region,
      },
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
    // Tasks start only once devices can onboard: template (with its hook permission and role), the
    // claim certificate, its policy attachment and the key in its secret.
    this.service.node.addDependency(onb.template, onb.claimAttachment, onb.claimKey);
  }
}
