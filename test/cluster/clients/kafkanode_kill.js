'use strict';
// kafka-node 5 on seed 001's flow while the test kills a broker: a
// ConsumerGroup and a producer (requireAcks -1, one record every 20 ms) on
// an RF=3 topic, bootstrapped from every broker. Prints "ready" once the
// consumer has its first record (the test then kills a broker and restarts
// it), produces for SECONDS, then waits until every acknowledged record
// was consumed and prints one JSON line.
// Usage: node kafkanode_kill.js <brokers,comma-separated> <topic> <seconds>
const kafka = require('kafka-node');

const [brokers, topic, seconds] = process.argv.slice(2);
const deadline = setTimeout(() => done(false, 'timed out'), (Number(seconds) + 120) * 1000);
const acked = new Set();
const seen = new Set();
let lastSeen = 0;
let maxGap = 0;

function done (ok, error) {
  clearTimeout(deadline);
  const missing = [...acked].filter(v => !seen.has(v)).length;
  process.stdout.write(JSON.stringify({ client: 'kafka-node', ok, error, produced: acked.size, consumed: acked.size - missing, max_gap_ms: maxGap }) + '\n',
    () => process.exit(ok ? 0 : 1));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const p = (f) => new Promise((resolve, reject) => f((err, v) => err ? reject(err) : resolve(v)));

async function main () {
  let ready = false;
  const group = new kafka.ConsumerGroup({ kafkaHost: brokers, groupId: `${topic}-group`, fromOffset: 'earliest', autoCommit: true,
    autoCommitIntervalMs: 1000, connectRetryOptions: { retries: 30, minTimeout: 200, maxTimeout: 2000 } }, [topic]);
  group.on('message', m => {
    const now = Date.now();
    if (lastSeen && now - lastSeen > maxGap) maxGap = now - lastSeen;
    lastSeen = now;
    seen.add(m.value.toString());
    if (!ready) { ready = true; process.stdout.write('ready\n'); }
  });
  group.on('error', err => process.stderr.write(`consumer: ${err}\n`));
  const client = new kafka.KafkaClient({ kafkaHost: brokers, connectTimeout: 5000, requestTimeout: 10000,
    connectRetryOptions: { retries: 30, minTimeout: 200, maxTimeout: 2000 } });
  client.on('error', err => process.stderr.write(`client: ${err}\n`));
  const producer = new kafka.HighLevelProducer(client, { requireAcks: -1 });
  if (!producer.ready) await new Promise(resolve => producer.once('ready', resolve));
  producer.on('error', err => process.stderr.write(`producer: ${err}\n`));
  const end = Date.now() + Number(seconds) * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const v = `kafka-node-${i}`;
    try {
      await p(cb => producer.send([{ topic, messages: [v] }], cb));
      acked.add(v);
    } catch (err) {
      process.stderr.write(`send ${v}: ${err}\n`);
      await p(cb => client.refreshMetadata([topic], cb)).catch(() => null);
    }
    await sleep(20);
  }
  for (let i = 0; i < 600 && [...acked].some(v => !seen.has(v)); i++) await sleep(100);
  const ok = [...acked].every(v => seen.has(v));
  await p(cb => group.close(true, cb)).catch(() => null);
  await p(cb => client.close(cb)).catch(() => null);
  return ok;
}

main().then(ok => done(ok && acked.size > 0, ok ? null : 'acknowledged records not consumed'), err => done(false, String(err && err.stack ? err.stack : err)));
