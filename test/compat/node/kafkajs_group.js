'use strict';
// KafkaJS consume path. NEEDS CONSUMER GROUPS (FindCoordinator, JoinGroup,
// SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup): KafkaJS has
// no consumer without a groupId. Creates a topic, produces keyed records with
// headers (gzip), consumes them from the beginning in a fresh group, compares
// every field, and checks the offset the group committed.
//
// Usage: node kafkajs_group.js <broker> <topic>

const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs');
const { run, expect, expectEqual, timestampBase, valueFor } = require('./common');

run('kafkajs-group', async ({ broker, topic, count }) => {
  const kafka = new Kafka({
    clientId: 'strom-compat-kafkajs-group',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 3 }
  });
  const groupId = `compat-group-${topic}`;
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200
  });
  await admin.connect();
  await producer.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true
    });
    expect(created === true, `createTopics returned ${created}, want true`);

    const base = timestampBase();
    const want = [];
    for (let n = 0; n < count; n++) {
      want.push({
        offset: String(n),
        key: `key-${n}`,
        value: valueFor('kafkajs', 'gzip', n),
        timestamp: String(base + n * 1000),
        headers: { 'h-index': String(n) }
      });
    }
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: want.map((r) => ({ partition: 0, key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers }))
    });

    const got = [];
    let resolveAll;
    const all = new Promise((resolve) => { resolveAll = resolve; });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {};
        for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString();
        got.push({
          partition,
          offset: message.offset,
          key: message.key === null ? null : message.key.toString(),
          value: message.value.toString(),
          timestamp: message.timestamp,
          headers
        });
        if (got.length >= count) resolveAll();
      }
    });
    await all;
    // Stopping commits what was consumed.
    await consumer.disconnect();

    expectEqual('consumed records', got, want.map((r) => Object.assign({ partition: 0 }, r)));

    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    expectEqual('committed offsets', committed.map((t) => [t.topic, t.partitions.map((p) => [p.partition, p.offset])]),
      [[topic, [[0, String(count)]]]]);

    return { produced: count, consumed: got.length, group: groupId, committed: count };
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
});
