'use strict';
// kafka-node 5 ConsumerGroup in the style of the tutorials our users follow
// (seed 000: `autoCommit: true, autoCommitIntervalMs: 5000`, and
// `consumer.close(true, cb)` on SIGINT to commit before leaving). kafka-node
// speaks the classic group protocol at v0: JoinGroup/SyncGroup/Heartbeat/
// LeaveGroup v0, OffsetCommit v2 with its generation and member id,
// OffsetFetch v1, and its own roundrobin assignor.
//
// 1. Two members of one group split a two-partition topic: once both have
//    their assignment, records produced to each partition are received by
//    exactly one member, each record once.
// 2. Both close(true): their offsets are committed, then they leave.
// 3. A new member of the group resumes where the group left off: it
//    receives exactly the records produced since, none of the earlier ones.
//
// Usage: node kafkanode_group.js <broker> <topic>

const kafka = require('kafka-node');
const { run, expect, expectEqual } = require('./common');

function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

function once (emitter, event) {
  return new Promise((resolve, reject) => {
    emitter.once(event, resolve);
    emitter.once('error', reject);
  });
}

function member (broker, topic, groupId, id) {
  const c = new kafka.ConsumerGroup({
    kafkaHost: broker,
    groupId,
    id,
    autoCommit: true,
    autoCommitIntervalMs: 5000,
    fetchMaxWaitMs: 100,
    fetchMaxBytes: 1024 * 1024,
    fromOffset: 'earliest',
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    protocol: ['roundrobin'],
    encoding: 'utf8',
    connectRetryOptions: { retries: 2, minTimeout: 200, maxTimeout: 1000 }
  }, [topic]);
  c.received = [];
  c.on('message', (m) => c.received.push(m));
  return c;
}

// assigned returns the partitions a member currently owns.
function assigned (c, topic) {
  return (c.topicPayloads || []).filter((p) => p.topic === topic).map((p) => p.partition).sort();
}

function until (what, cond, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = setInterval(() => {
      if (cond()) {
        clearInterval(tick);
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(tick);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 50);
  });
}

run('kafka-node-group', async ({ broker, topic, count }) => {
  const groupId = `compat-kafkanode-${topic}`;
  const client = new kafka.KafkaClient({ kafkaHost: broker, clientId: 'strom-compat-kafka-node-group', requestTimeout: 10000 });
  const producer = new kafka.Producer(client, { requireAcks: 1 });
  if (!producer.ready) await once(producer, 'ready');
  expectEqual('createTopics errors', await call((cb) => client.createTopics([{ topic, partitions: 2, replicationFactor: 1 }], cb)), []);
  let seq = 0;
  const produce = async (label) => {
    const sent = [];
    for (const partition of [0, 1]) {
      const messages = [];
      for (let i = 0; i < count; i++) {
        const v = `${label}-p${partition}-${seq++}`;
        messages.push(v);
        sent.push(v);
      }
      await call((cb) => producer.send([{ topic, partition, messages }], cb));
    }
    return sent;
  };

  // 1. Two members split the partitions.
  const a = member(broker, topic, groupId, 'member-a');
  const b = member(broker, topic, groupId, 'member-b');
  for (const c of [a, b]) c.on('error', (e) => { throw e; });
  await until('both members to own one partition each', () => {
    const pa = assigned(a, topic);
    const pb = assigned(b, topic);
    return pa.length === 1 && pb.length === 1 && pa[0] !== pb[0];
  });
  const first = await produce('first');
  await until('the first records', () => a.received.length + b.received.length >= first.length);
  const byMember = {};
  for (const [name, c] of [['a', a], ['b', b]]) {
    for (const m of c.received) {
      expect(m.topic === topic, `message from ${m.topic}`);
      byMember[m.partition] = byMember[m.partition] || new Set();
      byMember[m.partition].add(name);
    }
  }
  for (const p of [0, 1]) {
    expect(byMember[p] && byMember[p].size === 1, `partition ${p} consumed by ${byMember[p] ? [...byMember[p]] : 'nobody'}, want one member`);
  }
  const got = a.received.concat(b.received).map((m) => m.value).sort();
  expectEqual('records received by the two members', got, first.slice().sort());

  // 2. close(true): commit, then leave.
  await call((cb) => a.close(true, cb));
  await call((cb) => b.close(true, cb));

  // 3. A new member resumes from the committed offsets.
  const second = await produce('second');
  const c = member(broker, topic, groupId, 'member-c');
  c.on('error', (e) => { throw e; });
  await until('the records produced after the commit', () => c.received.length >= second.length);
  // A little longer: anything from before the commit would show up now.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expectEqual('records the resumed member received', c.received.map((m) => m.value).sort(), second.slice().sort());
  await call((cb) => c.close(true, cb));
  producer.close();
  client.close();

  return { produced: first.length + second.length, consumed: got.length + c.received.length, group: groupId, committed: 2 * count };
});
