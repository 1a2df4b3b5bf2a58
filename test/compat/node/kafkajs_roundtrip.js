'use strict';
// KafkaJS round trip that needs NO consumer group: create a topic, produce
// keyed records with headers and explicit timestamps (uncompressed, then
// gzip, KafkaJS's only built-in codec), and check every answer the broker
// gives: each batch's base offset, the earliest and latest offsets, and
// offsets looked up by timestamp. KafkaJS cannot consume without a group, so
// the records themselves are read back by the Go test (franz-go) from the
// "records" list in the summary; kafkajs_group.js consumes them with a group.
//
// Usage: node kafkajs_roundtrip.js <broker> <topic>

const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs');
const { run, expect, expectEqual, timestampBase, valueFor } = require('./common');

const CODECS = [
  { name: 'none', type: CompressionTypes.None },
  { name: 'gzip', type: CompressionTypes.GZIP }
];

run('kafkajs', async ({ broker, topic, count }) => {
  const kafka = new Kafka({
    clientId: 'strom-compat-kafkajs',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 3 }
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false
  });
  await admin.connect();
  await producer.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true
    });
    expect(created === true, `createTopics returned ${created}, want true (topic already existed?)`);

    const base = timestampBase();
    const records = [];
    for (const codec of CODECS) {
      const batch = [];
      for (let i = 0; i < count; i++) {
        const n = records.length + batch.length;
        batch.push({
          // The very first record has no key: a null key must stay null.
          key: n === 0 ? null : `key-${n}`,
          value: valueFor('kafkajs', codec.name, n),
          timestamp: base + n * 1000,
          headers: { 'h-index': String(n), 'h-codec': codec.name, 'h-dup': ['first', 'second'] }
        });
      }
      const res = await producer.send({
        topic,
        acks: -1,
        compression: codec.type,
        messages: batch.map((r) => ({
          partition: 0,
          key: r.key,
          value: r.value,
          timestamp: String(r.timestamp),
          headers: r.headers
        }))
      });
      expectEqual(`${codec.name} produce result`, res.map((p) => [p.topicName, p.partition, p.errorCode, p.baseOffset]),
        [[topic, 0, 0, String(records.length)]]);
      for (const r of batch) {
        records.push({
          offset: records.length,
          key: r.key,
          value: r.value,
          timestamp: r.timestamp,
          headers: [['h-index', r.headers['h-index']], ['h-codec', codec.name], ['h-dup', 'first'], ['h-dup', 'second']],
          codec: codec.name
        });
      }
    }
    const total = records.length;

    const offsets = await admin.fetchTopicOffsets(topic);
    expectEqual('fetchTopicOffsets', offsets.map((p) => [p.partition, p.low, p.high, p.offset]),
      [[0, '0', String(total), String(total)]]);

    // ListOffsets by timestamp: the first offset whose timestamp is >= the
    // one asked for. KafkaJS maps "none" (-1) to the high watermark.
    const byTime = [];
    const probes = [
      [base - 5000, 0], // before everything
      [base, 0], // exactly the first
      [base + 4 * 1000 - 1, 4], // just before the fifth
      [base + (total - 1) * 1000, total - 1], // exactly the last
      [base + total * 1000, total] // after everything
    ];
    for (const [ts, want] of probes) {
      const got = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
      expectEqual(`fetchTopicOffsetsByTimestamp(${ts - base} ms after base)`, got.map((p) => [p.partition, p.offset]),
        [[0, String(want)]]);
      byTime.push({ delta_ms: ts - base, offset: want });
    }

    return { produced: total, codecs: CODECS.map((c) => c.name), by_timestamp: byTime, records };
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
});
