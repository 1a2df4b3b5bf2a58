'use strict';
// KafkaJS transactions. NEEDS TRANSACTIONS AND CONSUMER GROUPS. Creates a
// topic of 2 partitions; a transactional producer commits one transaction
// of COUNT records over both partitions, aborts the next, and commits a
// third that also commits offsets for a group (sendOffsets). Then a plain
// sentinel record goes to each partition, and two consumers read until
// they have seen both sentinels: the read_committed one (KafkaJS's
// default) must see exactly the committed records, the readUncommitted one
// every record, the aborted ones too. The group's offsets must be the ones
// the transaction committed.
//
// Usage: node kafkajs_txn.js <broker> <topic>

const { Kafka, Partitioners, logLevel } = require('kafkajs');
const { run, expect, expectEqual } = require('./common');

const SENTINEL = '__end__';

run('kafkajs-txn', async ({ broker, topic, count }) => {
  const kafka = new Kafka({
    clientId: 'strom-compat-kafkajs-txn',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 3 }
  });
  const admin = kafka.admin();
  const plain = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const tx = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    transactionalId: `compat-tx-${topic}`,
    maxInFlightRequests: 1,
    idempotent: true
  });
  const groupId = `compat-txn-group-${topic}`;
  await admin.connect();
  await plain.connect();
  await tx.connect();
  try {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    expect(created === true, `createTopics returned ${created}, want true`);
    const batch = (label) => [0, 1].map((partition) => ({
      topic,
      messages: Array.from({ length: count }, (_, n) => n).filter((n) => n % 2 === partition)
        .map((n) => ({ partition, value: `${label}-${n}` }))
    }));

    let t = await tx.transaction();
    await t.sendBatch({ topicMessages: batch('commit'), acks: -1 });
    await t.commit();

    t = await tx.transaction();
    await t.sendBatch({ topicMessages: batch('abort'), acks: -1 });
    await t.abort();

    t = await tx.transaction();
    await t.sendBatch({ topicMessages: batch('offsets'), acks: -1 });
    await t.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '9' }] }] });
    await t.commit();

    await plain.send({ topic, acks: -1, messages: [{ partition: 0, value: SENTINEL }, { partition: 1, value: SENTINEL }] });

    const readAll = async (readUncommitted) => {
      const consumer = kafka.consumer({ groupId: `${groupId}-reader-${readUncommitted}`, readUncommitted, maxWaitTimeInMs: 200 });
      const values = [];
      const ends = new Set();
      let resolveDone;
      const done = new Promise((resolve) => { resolveDone = resolve; });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            const v = message.value.toString();
            if (v === SENTINEL) {
              ends.add(partition);
              if (ends.size === 2) resolveDone();
            } else {
              values.push(v);
            }
          }
        });
        await done;
      } finally {
        await consumer.disconnect();
      }
      return values.sort();
    };
    const labels = (ls) => ls.flatMap((l) => Array.from({ length: count }, (_, n) => `${l}-${n}`)).sort();
    const committed = await readAll(false);
    expectEqual('read_committed records', committed, labels(['commit', 'offsets']));
    const all = await readAll(true);
    expectEqual('read_uncommitted records', all, labels(['commit', 'abort', 'offsets']));

    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    expectEqual('offsets committed by the transaction', offsets.map((o) => o.partitions.map((p) => [p.partition, p.offset]).sort()),
      [[[0, '7'], [1, '9']]]);
    return { produced: 3 * count, consumed: committed.length };
  } finally {
    await tx.disconnect().catch(() => {});
    await plain.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
});
