'use strict';
// kafka-node 5 round trip, written the way the tutorials our users follow
// drive it: KafkaClient({kafkaHost}), client.createTopics, a Producer sending
// KeyedMessages and plain strings with `attributes` choosing the codec
// (0 none, 1 gzip, 2 snappy), a requireAcks: 0 Producer with the cyclic
// partitioner, Offset.fetchLatestOffsets / Offset.fetch, and a Consumer
// with fromOffset: true and an explicit offset, no group membership and no
// auto-commit, closed with close(true) as the seeds do on SIGINT, which
// commits its position (OffsetCommit v0 for its groupId, from outside group
// management). The consumer starts past the end on purpose, so that the
// broker answers OFFSET_OUT_OF_RANGE and the tutorials' offsetOutOfRange
// handler (Offset.fetch with maxNum 2, then setOffset to the smallest) has
// to bring it back to the start of the log.
//
// kafka-node speaks only the old protocol: Produce v0-2 and Fetch v0-2 with
// MessageSet v0/v1 (it rejects fetched data whose magic byte is above 1),
// ListOffsets v0, Metadata v0-1, CreateTopics v0-1. Its Producer sends
// Produce v2 (MessageSet v1, with timestamps; a compressed wrapper carries
// inner offsets all 0), but the plain Consumer always sends Fetch v0, so the
// broker must down-convert to MessageSet v0, which has no timestamps.
//
// Usage: node kafkanode_roundtrip.js <broker> <topic>

const kafka = require('kafka-node');
const { run, expect, expectEqual, valueFor } = require('./common');

// snappy is an optional native dependency of kafka-node; without it the
// codec throws "Snappy codec is not installed". `make deps` builds it.
function snappyAvailable () {
  try {
    require('snappy');
    return true;
  } catch (e) {
    return false;
  }
}

const CODECS = [
  { name: 'none', attributes: 0 },
  { name: 'gzip', attributes: 1 },
  { name: 'snappy', attributes: 2, optional: true }
];

function newClient (broker, id) {
  return new kafka.KafkaClient({
    kafkaHost: broker,
    clientId: id,
    connectTimeout: 5000,
    requestTimeout: 10000,
    connectRetryOptions: { retries: 2, minTimeout: 200, maxTimeout: 1000 }
  });
}

function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

function once (emitter, event) {
  return new Promise((resolve, reject) => {
    emitter.once(event, resolve);
    emitter.once('error', reject);
  });
}

run('kafka-node', async ({ broker, topic, count }) => {
  const codecs = CODECS.filter((c) => !c.optional || snappyAvailable());

  // Produce side: one client for the producer, as in the tutorials.
  const client = newClient(broker, 'strom-compat-kafka-node-producer');
  client.on('error', (err) => { throw err; });
  const producer = new kafka.Producer(client, { requireAcks: 1, ackTimeoutMs: 1000 });
  if (!producer.ready) await once(producer, 'ready');

  const createErrors = await call((cb) => client.createTopics([{ topic, partitions: 1, replicationFactor: 1 }], cb));
  expectEqual('createTopics errors', createErrors, []);

  const want = [];
  for (const codec of codecs) {
    const baseOffset = want.length;
    // The first message of each batch is a plain string with no key.
    const messages = [];
    for (let i = 0; i < count; i++) {
      const n = want.length;
      const value = valueFor('kafka-node', codec.name, n);
      const key = i === 0 ? null : `key-${n}`;
      messages.push(key === null ? value : new kafka.KeyedMessage(key, value));
      want.push({ offset: n, key, value });
    }
    const res = await call((cb) => producer.send([{ topic, partition: 0, messages, attributes: codec.attributes }], cb));
    expectEqual(`${codec.name} produce result`, res, { [topic]: { 0: baseOffset } });
  }

  // The LogRocket tutorial's producer: requireAcks 0 and the cyclic
  // partitioner, sending a JSON string with no key and no partition. With
  // acks 0 the broker must not answer; kafka-node reports "no ack" at once.
  const noAck = new kafka.Producer(client, { requireAcks: 0, partitionerType: 2 });
  if (!noAck.ready) await once(noAck, 'ready');
  const event = JSON.stringify({ n: want.length, source: 'kafka-node', acks: 0 });
  const noAckRes = await call((cb) => noAck.send([{ topic, messages: event }], cb));
  expectEqual('acks=0 produce result', noAckRes, { result: 'no ack' });
  want.push({ offset: want.length, key: null, value: event });
  const total = want.length;

  // Same client, so the same connection: the broker has handled the acks=0
  // produce before these offset requests.
  const offset = new kafka.Offset(client);
  const latest = await call((cb) => offset.fetchLatestOffsets([topic], cb));
  expectEqual('fetchLatestOffsets', latest, { [topic]: { 0: total } });
  const earliest = await call((cb) => offset.fetchEarliestOffsets([topic], cb));
  expectEqual('fetchEarliestOffsets', earliest, { [topic]: { 0: 0 } });
  const byTime = await call((cb) => offset.fetch([{ topic, partition: 0, time: -1, maxNum: 1 }], cb));
  expectEqual('Offset.fetch(time -1)', byTime, { [topic]: { 0: [total] } });
  producer.close();

  // Consume side: a second client, a plain Consumer with an explicit offset
  // past the end of the log.
  const cclient = newClient(broker, 'strom-compat-kafka-node-consumer');
  const coffset = new kafka.Offset(cclient);
  const groupId = `compat-kafkanode-plain-${topic}`;
  const consumer = new kafka.Consumer(cclient, [{ topic, partition: 0, offset: total + 1000 }], {
    groupId,
    autoCommit: false,
    fetchMaxWaitMs: 100,
    fetchMaxBytes: 1024 * 1024,
    fromOffset: true,
    encoding: 'utf8'
  });

  const got = [];
  let outOfRange = 0;
  let resetTo = null;
  const done = new Promise((resolve, reject) => {
    consumer.on('error', reject);
    cclient.on('error', reject);
    // As in the tutorials: look up the offsets before now (maxNum 2) and
    // restart from the smallest. Paused meanwhile so that fetches still in
    // flight cannot reset the position twice.
    consumer.on('offsetOutOfRange', (t) => {
      outOfRange++;
      if (resetTo !== null || consumer.paused) return;
      consumer.pause();
      t.maxNum = 2;
      coffset.fetch([t], (err, offsets) => {
        if (err) return reject(err);
        const min = Math.min.apply(null, offsets[t.topic][t.partition]);
        resetTo = min;
        consumer.setOffset(t.topic, t.partition, min);
        consumer.resume();
      });
    });
    consumer.on('message', (m) => {
      got.push(m);
      // Wait a little past the last one so that duplicates show up.
      if (got.length === total) setTimeout(resolve, 500);
    });
  });
  await done;
  // close(true) commits the consumer's position (OffsetCommit v0 for its
  // groupId: generation -1, no member), then closes the client. A second
  // client reads the commit back with OffsetFetch v1, as kafka-node's
  // Offset.fetchCommits does.
  await call((cb) => consumer.close(true, cb));
  const vclient = newClient(broker, 'strom-compat-kafka-node-offsets');
  const voffset = new kafka.Offset(vclient);
  const commits = await call((cb) => voffset.fetchCommits(groupId, [{ topic, partition: 0 }], cb));
  expectEqual('offset committed by close(true)', commits, { [topic]: { 0: total } });
  vclient.close();

  expect(outOfRange > 0, 'the broker never answered OFFSET_OUT_OF_RANGE for an offset past the end');
  expectEqual('offset chosen by the offsetOutOfRange handler', resetTo, 0);
  expectEqual('consumed records', got.map((m) => ({ offset: m.offset, key: m.key, value: m.value })), want);
  for (const m of got) {
    expectEqual(`record ${m.offset} topic/partition/high watermark`, [m.topic, m.partition, m.highWaterOffset], [topic, 0, total]);
  }

  return {
    produced: total,
    consumed: got.length,
    codecs: codecs.map((c) => c.name),
    snappy: snappyAvailable(),
    out_of_range_events: outOfRange,
    group: groupId,
    committed: total,
    records: want
  };
});
