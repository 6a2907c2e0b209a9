import { runContract } from './contract.js';

// Through the realism proxy with AWS's eventual consistency on: a role is refused for 2 s after it is created or
// changed, new Kinesis and Firehose streams stay CREATING and new functions Pending for 1.5 s, updates 1 s, and
// every call takes 5 ms more. IOTCTL_TEST_REALISM_OPTIONS (JSON) replaces these.
runContract('aws', {
  realism: process.env.IOTCTL_TEST_REALISM_OPTIONS
    ? JSON.parse(process.env.IOTCTL_TEST_REALISM_OPTIONS)
    : { latencyMs: 5, iamPropagationSeconds: 2, creating: { kinesisMs: 1_500, firehoseMs: 1_500, lambdaMs: 1_500, lambdaUpdateMs: 1_000 } },
});
