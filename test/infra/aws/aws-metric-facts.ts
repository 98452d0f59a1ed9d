/**
 * What AWS publishes to CloudWatch, as documented: namespace, metric names and the dimension sets each
 * metric is published with. The alarm test (alarms.test.ts) checks every alarm of the stack against this
 * table, so an alarm on a metric or dimension set AWS never publishes (it would sit in INSUFFICIENT_DATA
 * or OK forever) fails the build. Facts only from the pages cited; add a row with its source when an
 * alarm needs a new metric.
 */

export interface AwsMetricFact {
  namespace: string;
  metrics: readonly string[];
  /** Each array is one dimension combination the metrics are published with (names sorted). */
  dimensionSets: ReadonlyArray<readonly string[]>;
  source: string;
}

export const AWS_METRIC_FACTS: readonly AwsMetricFact[] = [
  {
    // "Dimensions for metrics": ApiName; ApiName, Method, Resource, Stage; ApiName, Stage.
    source:
      'https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html',
    namespace: 'AWS/ApiGateway',
    metrics: ['4XXError', '5XXError', 'Count', 'IntegrationLatency', 'Latency'],
    dimensionSets: [['ApiName'], ['ApiName', 'Stage'], ['ApiName', 'Method', 'Resource', 'Stage']],
  },
  {
    // WebSocket APIs: "ApiId; ApiId, Stage; ApiId, Method, Resource, Stage" (the last only with detailed
    // metrics). IntegrationLatency is left to the REST row above (factFor takes the first match).
    source:
      'https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-logging.html',
    namespace: 'AWS/ApiGateway',
    metrics: ['ClientError', 'ConnectCount', 'ExecutionError', 'IntegrationError', 'MessageCount'],
    dimensionSets: [['ApiId'], ['ApiId', 'Stage'], ['ApiId', 'Method', 'Resource', 'Stage']],
  },
  {
    // Invocation, performance (IteratorAge: "event source mappings that read from streams") and
    // concurrency metrics; dimension FunctionName (also Resource / ExecutedVersion for aliases).
    source: 'https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html',
    namespace: 'AWS/Lambda',
    metrics: ['ConcurrentExecutions', 'Duration', 'Errors', 'Invocations', 'IteratorAge', 'Throttles'],
    dimensionSets: [['FunctionName'], ['FunctionName', 'Resource'], ['ExecutedVersion', 'FunctionName']],
  },
  {
    // "The only dimension that Amazon SQS sends to CloudWatch is QueueName."
    source:
      'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html',
    namespace: 'AWS/SQS',
    metrics: ['ApproximateAgeOfOldestMessage', 'ApproximateNumberOfMessagesVisible'],
    dimensionSets: [['QueueName']],
  },
  {
    // Request metrics (published only for a bucket with a metrics configuration): per BucketName and
    // FilterId, the configuration's id. The failure archives have one, so each archived batch counts.
    source: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html',
    namespace: 'AWS/S3',
    metrics: ['AllRequests', 'PutRequests', '4xxErrors', '5xxErrors'],
    dimensionSets: [['BucketName', 'FilterId']],
  },
  {
    // Stream-level metrics, dimension StreamName.
    source: 'https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html',
    namespace: 'AWS/Kinesis',
    metrics: ['GetRecords.IteratorAgeMilliseconds', 'IncomingRecords'],
    dimensionSets: [['StreamName']],
  },
  {
    // Rule metrics: "The RuleName dimension contains the name of the rule."
    source: 'https://docs.aws.amazon.com/iot/latest/developerguide/metrics_dimensions.html#rulemetrics',
    namespace: 'AWS/IoT',
    metrics: ['ParseError', 'RuleMessageThrottled', 'RuleNotFound', 'TopicMatch'],
    dimensionSets: [['RuleName']],
  },
  {
    // Rule action metrics (Success, Failure) and error action metrics: "The RuleName dimension contains
    // the name of the rule that specifies the action. The ActionType dimension contains the type of
    // action that was invoked." (also shared/reference/aws-facts.md §6: Failure dims RuleName, ActionType)
    source:
      'https://docs.aws.amazon.com/iot/latest/developerguide/metrics_dimensions.html#rule-action-metrics',
    namespace: 'AWS/IoT',
    metrics: ['ErrorActionFailure', 'ErrorActionSuccess', 'Failure', 'Success'],
    dimensionSets: [['ActionType', 'RuleName']],
  },
  {
    // ReadThrottleEvents / WriteThrottleEvents: TableName (the table), or TableName +
    // GlobalSecondaryIndexName (an index). ThrottledRequests: TableName + Operation.
    source: 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html',
    namespace: 'AWS/DynamoDB',
    metrics: ['ReadThrottleEvents', 'WriteThrottleEvents'],
    dimensionSets: [['TableName'], ['GlobalSecondaryIndexName', 'TableName']],
  },
  {
    source: 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html',
    namespace: 'AWS/DynamoDB',
    metrics: ['ThrottledRequests'],
    dimensionSets: [['Operation', 'TableName']],
  },
  {
    // "Writing and storage metrics": MagneticStoreRejectedRecordCount, ...UploadUserFailures,
    // ...UploadSystemFailures — dimensions DatabaseName, TableName, Operation.
    source: 'https://docs.aws.amazon.com/timestream/latest/developerguide/metrics-dimensions.html',
    namespace: 'AWS/Timestream',
    metrics: [
      'MagneticStoreRejectedRecordCount',
      'MagneticStoreRejectedUploadSystemFailures',
      'MagneticStoreRejectedUploadUserFailures',
    ],
    dimensionSets: [['DatabaseName', 'Operation', 'TableName']],
  },
];

/** The CloudFormation resource a dimension's value must name (by Ref, GetAtt or the resource's name). */
export const DIMENSION_RESOURCE: Record<string, { type: string; attribute?: string; nameProperty?: string }> =
  {
    ApiName: { type: 'AWS::ApiGateway::RestApi', nameProperty: 'Name' },
    ApiId: { type: 'AWS::ApiGatewayV2::Api' },
    Stage: { type: 'AWS::ApiGateway::Stage' },
    FunctionName: { type: 'AWS::Lambda::Function' },
    QueueName: { type: 'AWS::SQS::Queue', attribute: 'QueueName' },
    StreamName: { type: 'AWS::Kinesis::Stream' },
    RuleName: { type: 'AWS::IoT::TopicRule' },
    DatabaseName: { type: 'AWS::Timestream::Database' },
    BucketName: { type: 'AWS::S3::Bucket' },
  };

export function factFor(namespace: string, metric: string): AwsMetricFact | undefined {
  return AWS_METRIC_FACTS.find((f) => f.namespace === namespace && f.metrics.includes(metric));
}
