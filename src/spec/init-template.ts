import { defaultAthenaDatabase } from './names.js';

/**
 * The commented iotctl.yaml that `iotctl init` writes: the seed architecture, ready to run without edits.
 * The aws variant is the same platform; the AWS-only settings are there as comments.
 */
export function initSpec(project: string, target: 'local' | 'aws' = 'local'): string {
  const aws = target === 'aws';
  const errorAction = (rule: string) =>
    aws ? `cloudwatchLogs: { logGroup: rule-errors }   # every failure with its reason; the stage's group /iotctl/${project}/<stage>/rule-errors` : `republish: { topic: 'errors/rules/${rule}', qos: 1 }`;
  return `# iotctl.yaml: the desired state of your IoT telemetry platform.
# Validate with \`iotctl spec validate\`; editor completion: \`iotctl spec schema > iotctl.schema.json\`.
project: ${project}
# local: the embedded platform (\`iotctl local up\`); aws: your AWS account through SDK v3.
# --target or IOTCTL_TARGET overrides this, so one file serves both.
target: ${target}
${
  aws
    ? `# Credentials come from the AWS default chain (AWS_PROFILE / --profile, SSO, env, instance roles).
# This region wins over AWS_REGION and the profile's (a difference is reported); --region overrides it.
region: us-east-1
# account: "123456789012"   # pin the account: every command refuses credentials of another one
`
    : ''
}
local:
  host: 127.0.0.1
  mqttPort: 8883            # MQTT over TLS with client certificates from the local CA

devices:
  thingType: sensor
  attributes: {}            # default attributes for every registered thing
  topics:
    # \${thing} is the thing name; devices publish telemetry here...
    telemetry: dt/\${project}/\${thing}/telemetry
    # ...and subscribe to their commands here.
    commands: cmd/\${project}/\${thing}/#
  policy:
    name: ${project}-device   # least privilege: connect as its own thing, publish/subscribe only its own topics

# Kinesis Data Stream for the recent-data path.
streams:
  - name: telemetry
    shards: 2
    retentionHours: 24

# Topic rules (AWS IoT SQL 2016-03-23). Every message fans out to the stream and to the data lake.${
  aws ? `
# On AWS each action may name a roleArn; without one, iotctl creates one least-privilege role per rule.` : ''
}
rules:
  - name: telemetry_to_stream
    description: Recent-data path, Kinesis -> ingest Lambda -> PostgreSQL
    sql: >-
      SELECT *, topic(3) AS device_id, topic() AS topic, traceid() AS message_id, timestamp() AS ts
      FROM 'dt/${project}/+/telemetry'
    actions:
      - kinesis: { stream: telemetry, partitionKey: '\${topic(3)}' }
    errorAction:
      ${errorAction('telemetry_to_stream')}
  - name: telemetry_to_lake
    description: Data-lake path, IoT Analytics channel -> pipeline -> Parquet datastore
    sql: >-
      SELECT *, topic(3) AS device_id, topic() AS topic, traceid() AS message_id, timestamp() AS ts
      FROM 'dt/${project}/+/telemetry'
    actions:
      - iotAnalytics: { channel: telemetry_raw }
    errorAction:
      ${errorAction('telemetry_to_lake')}

# The ingest Lambda (templates/ingest-rds) reading the stream in batches into PostgreSQL.
functions:
  - name: ingest
    template: ingest-rds
    timeoutSeconds: 30
    eventSource:
      stream: telemetry
      batchSize: 500
      maximumBatchingWindowSeconds: ${aws ? '0     # whole seconds on AWS' : '0.2'}
      startingPosition: TRIM_HORIZON
      maximumRetryAttempts: 10
      bisectBatchOnFunctionError: true
      reportBatchItemFailures: true
      onFailure: ${aws ? 'ingest-failures       # an SQS queue iotctl creates for the stage, or an SQS/SNS ARN' : 'ingest-failures'}${
        aws
          ? `
    # roleArn: arn:aws:iam::123456789012:role/ingest   # default: a least-privilege role iotctl creates
    # vpc:                                              # to reach an RDS instance inside a VPC
    #   subnetIds: [subnet-0123456789abcdef0]
    #   securityGroupIds: [sg-0123456789abcdef0]`
          : ''
      }

# PostgreSQL keeps recent data only. DATABASE_URL (or PG*) names a server; unset, the local platform
# runs an embedded PostgreSQL under .iotctl/.
database:
  retention: 24h
  retentionSchedule: rate(1 hour)${
    aws
      ? `
  # On AWS: DATABASE_URL (stored by \`apply\` in Secrets Manager, never in the function's settings), or RDS:
  # rds:
  #   instance: telemetry-db      # DescribeDBInstances finds the endpoint; TLS verify-full with the RDS CA
  #   user: iotctl
  #   iamAuth: true               # or secretArn: arn:aws:secretsmanager:...`
      : ''
  }

# IoT Analytics resource model (on aws: Firehose + S3 Parquet + Glue + Athena).
analytics:
  channels:
    - name: telemetry_raw
      retentionDays: 30
  pipelines:
    - name: telemetry_pipeline
      channel: telemetry_raw
      datastore: telemetry_store
      activities:
        # \`iotctl check\`'s canary ("iotctl_check": true) passes, so the check finds it in the datastore.
        - filter: { filter: 'CASE isUndefined(iotctl_check) WHEN true THEN temperature > -50 AND temperature < 150 ELSE iotctl_check = true END' }
        # 1.8, not 9 / 5: Int / Int is Int in IoT SQL. The canary has no temperature: 0, so it is not a failure.
        - math: { attribute: temperature_f, math: 'CASE isUndefined(temperature) WHEN true THEN 0 ELSE temperature * 1.8 + 32 END' }
        - deviceRegistryEnrich: { attribute: device, thingName: device_id }
  datastores:
    - name: telemetry_store
      format: parquet
  datasets:
    - name: daily_device_summary
      sql: >-
        SELECT device_id, count(*) AS messages, avg(temperature) AS avg_temperature, max(temperature) AS max_temperature
        FROM telemetry_store WHERE device_id NOT LIKE '${project}-%-canary' GROUP BY device_id ORDER BY device_id
      schedule: cron(0 2 * * ? *)   # nightly at 02:00 UTC
      versionsToKeep: 7

athena:
  database: ${defaultAthenaDatabase(project)}   # Athena names: lowercase letters, digits and _
  workgroup: primary${aws ? `
  # outputLocation: s3://your-bucket/athena-results/   # needed unless the workgroup sets one` : ''}
`;
}
