'use strict';
// kafka-node reading what the broker stores differently from what was
// produced: a compacted topic (offset gaps where the cleaner removed
// records) or a zstd topic (which MessageSet v0 cannot carry: the broker
// down-converts it to gzip). kafka-node only speaks Fetch v0, so the broker
// down-converts every batch to MessageSet v0, keeping each record's offset.
// The script reads partition 0 from offset 0 up to the high watermark with
// a plain Consumer and lists every record it got; the Go tests compare the
// list with what franz-go reads.
//
// Usage: node kafkanode_read.js <broker> <topic>

const kafka = require('kafka-node');
const { run, expect } = require('./common');

run('kafka-node', async ({ broker, topic }) => {
  const client = new kafka.KafkaClient({ kafkaHost: broker, clientId: 'strom-compat-kafka-node-read', requestTimeout: 10000 });
  const consumer = new kafka.Consumer(client, [{ topic, partition: 0, offset: 0 }], {
    autoCommit: false,
    fetchMaxWaitMs: 100,
    fetchMaxBytes: 1024 * 1024,
    fromOffset: true,
    encoding: 'utf8',
    keyEncoding: 'utf8'
  });
  const got = [];
  await new Promise((resolve, reject) => {
    consumer.on('error', reject);
    consumer.on('offsetOutOfRange', (t) => reject(new Error(`offset out of range: ${JSON.stringify(t)}`)));
    consumer.on('message', (m) => {
      got.push({ offset: m.offset, key: m.key, value: m.value });
      if (m.offset === m.highWaterOffset - 1) resolve();
    });
  });
  await new Promise((resolve) => consumer.close(resolve));
  for (let i = 1; i < got.length; i++) {
    expect(got[i].offset > got[i - 1].offset, `offset ${got[i].offset} after ${got[i - 1].offset}`);
  }
  return { consumed: got.length, records: got };
});
