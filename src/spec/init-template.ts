import { defaultAthenaDatabase } from './names.js';

/** The commented iotctl.yaml that `iotctl init` writes: the seed architecture, ready to run without edits. */
export function initSpec(project: string): string {
  return `# iotctl.yaml: the desired state of your IoT telemetry platform.
# Validate with \`iotctl spec validate\`; editor completion: \`iotctl spec schema > iotctl.schema.json\`.
project: ${project}
# local: the embedded platform (\`iotctl local up\`); aws: your AWS account through SDK v3.
target: local

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

# Topic rules (AWS IoT SQL 2016-03-23). Every message fans out to the stream and to the data lake.
rules:
  - name: telemetry_to_stream
    description: Recent-data path, Kinesis -> ingest Lambda -> PostgreSQL
    sql: >-
      SELECT *, topic(3) AS device_id, topic() AS topic, traceid() AS message_id, timestamp() AS ts
      FROM 'dt/${project}/+/telemetry'
    actions:
      - kinesis: { stream: telemetry, partitionKey: '\${topic(3)}' }
    errorAction:
      republish: { topic: 'errors/rules/telemetry_to_stream', qos: 1 }
  - name: telemetry_to_lake
    description: Data-lake path, IoT Analytics channel -> pipeline -> Parquet datastore
    sql: >-
      SELECT *, topic(3) AS device_id, topic() AS topic, traceid() AS message_id, timestamp() AS ts
      FROM 'dt/${project}/+/telemetry'
    actions:
      - iotAnalytics: { channel: telemetry_raw }
    errorAction:
      republish: { topic: 'errors/rules/telemetry_to_lake', qos: 1 }

# The ingest Lambda (templates/ingest-rds) reading the stream in batches into PostgreSQL.
functions:
  - name: ingest
    template: ingest-rds
    timeoutSeconds: 30
    eventSource:
      stream: telemetry
      batchSize: 500
      maximumBatchingWindowSeconds: 0.2
      startingPosition: TRIM_HORIZON
      maximumRetryAttempts: 10
      bisectBatchOnFunctionError: true
      reportBatchItemFailures: true
      onFailure: ingest-failures

# PostgreSQL keeps recent data only. DATABASE_URL (or PG*) names a server; unset, the local platform
# runs an embedded PostgreSQL under .iotctl/.
database:
  retention: 24h
  retentionSchedule: rate(1 hour)

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
        - filter: { filter: 'temperature > -50 AND temperature < 150' }
        - math: { attribute: temperature_f, math: 'temperature * 1.8 + 32' }   # 1.8, not 9 / 5: Int / Int is Int in IoT SQL
        - deviceRegistryEnrich: { attribute: device, thingName: device_id }
  datastores:
    - name: telemetry_store
      format: parquet
  datasets:
    - name: daily_device_summary
      sql: >-
        SELECT device_id, count(*) AS messages, avg(temperature) AS avg_temperature, max(temperature) AS max_temperature
        FROM telemetry_store GROUP BY device_id ORDER BY device_id
      schedule: cron(0 2 * * ? *)   # nightly at 02:00 UTC
      versionsToKeep: 7

athena:
  database: ${defaultAthenaDatabase(project)}   # Athena names: lowercase letters, digits and _
  workgroup: primary
`;
}
