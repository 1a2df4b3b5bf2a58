'use strict';
// KafkaJS on seed 001's flow while the test kills a broker: a consumer in
// a group and a producer (acks=-1, one record every 20 ms) on an RF=3
// topic, bootstrapped from every broker. Prints "ready" once the consumer
// has its first record (the test then kills a broker and restarts it),
// produces for SECONDS, then waits until every acknowledged record was
// consumed and prints one JSON line.
// Usage: node kafkajs_kill.js <brokers,comma-separated> <topic> <seconds>
const { Kafka, logLevel } = require('kafkajs');

const [brokers, topic, seconds] = process.argv.slice(2);
const deadline = setTimeout(() => done(false, 'timed out'), (Number(seconds) + 120) * 1000);
const acked = new Set();
const seen = new Set();
let lastSeen = 0;
let maxGap = 0;

function done (ok, error) {
  clearTimeout(deadline);
  const missing = [...acked].filter(v => !seen.has(v)).length;
  process.stdout.write(JSON.stringify({ client: 'kafkajs', ok, error, produced: acked.size, consumed: acked.size - missing, max_gap_ms: maxGap }) + '\n',
    () => process.exit(ok ? 0 : 1));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function main () {
  const kafka = new Kafka({ clientId: 'kafkajs-kill', brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, maxRetryTime: 2000 } });
  const consumer = kafka.consumer({ groupId: `${topic}-group`, retry: { retries: 30, maxRetryTime: 2000 } });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let ready = false;
  await consumer.run({
    eachMessage: async ({ message }) => {
      const now = Date.now();
      if (lastSeen && now - lastSeen > maxGap) maxGap = now - lastSeen;
      lastSeen = now;
      seen.add(message.value.toString());
      if (!ready) { ready = true; process.stdout.write('ready\n'); }
    }
  });
  const producer = kafka.producer({ retry: { retries: 30, maxRetryTime: 2000 } });
  await producer.connect();
  const end = Date.now() + Number(seconds) * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const v = `kafkajs-${i}`;
    try {
      await producer.send({ topic, messages: [{ value: v }], acks: -1 });
      acked.add(v);
    } catch (err) {
      process.stderr.write(`send ${v}: ${err}\n`);
    }
    await sleep(20);
  }
  await producer.disconnect();
  for (let i = 0; i < 600 && [...acked].some(v => !seen.has(v)); i++) await sleep(100);
  await consumer.disconnect();
  return [...acked].every(v => seen.has(v));
}

main().then(ok => done(ok && acked.size > 0, ok ? null : 'acknowledged records not consumed'), err => done(false, String(err && err.stack ? err.stack : err)));
