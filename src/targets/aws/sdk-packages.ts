/**
 * The npm package of each AWS SDK client the aws target uses, by its service name in sdk.ts, plus the HTTP
 * handler. `npm run build` bundles them into dist/vendor/aws-sdk/ (scripts/bundle-aws-sdk.mjs).
 */
export const SDK_PACKAGES = {
  iot: '@aws-sdk/client-iot',
  kinesis: '@aws-sdk/client-kinesis',
  lambda: '@aws-sdk/client-lambda',
  iam: '@aws-sdk/client-iam',
  athena: '@aws-sdk/client-athena',
  glue: '@aws-sdk/client-glue',
  logs: '@aws-sdk/client-cloudwatch-logs',
  rds: '@aws-sdk/client-rds',
  secrets: '@aws-sdk/client-secrets-manager',
  sts: '@aws-sdk/client-sts',
  sqs: '@aws-sdk/client-sqs',
  s3: '@aws-sdk/client-s3',
  firehose: '@aws-sdk/client-firehose',
  scheduler: '@aws-sdk/client-scheduler',
  iotanalytics: '@aws-sdk/client-iotanalytics',
  cloudwatch: '@aws-sdk/client-cloudwatch',
  servicequotas: '@aws-sdk/client-service-quotas',
  http: '@smithy/node-http-handler',
} as const;
