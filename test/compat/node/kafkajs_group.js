'use strict';
// KafkaJS consume path. NEEDS CONSUMER GROUPS (FindCoordinator, JoinGroup,
// SyncGroup, Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup): KafkaJS has
// no consumer without a groupId. Creates a topic, produces keyed records with
// headers (gzip), consumes them from the beginning in a fresh group with
// eachMessage, compares every field, and checks the offset the group
// committed. Then produces more and starts a new consumer of the group: it
// must resume at the committed offset and see exactly the new records.
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

    // Resume: a new consumer of the group starts at the committed offset
    // (fromBeginning applies only to a group without one).
    const more = [];
    for (let n = count; n < 2 * count; n++) {
      more.push({ offset: String(n), key: `key-${n}`, value: valueFor('kafkajs', 'gzip', n), timestamp: String(base + n * 1000), headers: { 'h-index': String(n) } });
    }
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: more.map((r) => ({ partition: 0, key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers }))
    });
    const resumed = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
    const got2 = [];
    let resolveMore;
    const allMore = new Promise((resolve) => { resolveMore = resolve; });
    await resumed.connect();
    try {
      await resumed.subscribe({ topics: [topic], fromBeginning: true });
      await resumed.run({
        eachMessage: async ({ message }) => {
          got2.push(message.offset);
          if (got2.length >= count) resolveMore();
        }
      });
      await allMore;
      // Anything before the committed offset would arrive now.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await resumed.disconnect();
    }
    expectEqual('offsets the resumed consumer read', got2, more.map((r) => r.offset));
    const committed2 = await admin.fetchOffsets({ groupId, topics: [topic] });
    expectEqual('committed offsets after resuming', committed2.map((t) => t.partitions.map((p) => p.offset)), [[String(2 * count)]]);

    return { produced: 2 * count, consumed: got.length + got2.length, group: groupId, committed: 2 * count };
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
});
