'use strict';
// kafka-node 5 on seed 001's flow while the test kills a broker: a
// ConsumerGroup and a producer (requireAcks -1, one record every 20 ms) on
// an RF=3 topic, bootstrapped from every broker. Prints "ready" once the
// consumer has its first record (the test then kills a broker and restarts
// it), produces for SECONDS, then waits until every acknowledged record
// was consumed and prints one JSON line.
// Usage: node kafkanode_kill.js <brokers,comma-separated> <topic> <seconds>
const kafka = require('kafka-node');

const { tally } = require('./killtally');

const [brokers, topic, seconds] = process.argv.slice(2);
const t = tally('kafka-node', seconds);

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const p = (f) => new Promise((resolve, reject) => f((err, v) => err ? reject(err) : resolve(v)));

async function main () {
  const group = new kafka.ConsumerGroup({ kafkaHost: brokers, groupId: `${topic}-group`, fromOffset: 'earliest', autoCommit: true,
    autoCommitIntervalMs: 1000, connectRetryOptions: { retries: 30, minTimeout: 200, maxTimeout: 2000 } }, [topic]);
  group.on('message', m => t.read(m.value.toString()));
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
      t.acked.add(v);
    } catch (err) {
      process.stderr.write(`send ${v}: ${err}\n`);
      await p(cb => client.refreshMetadata([topic], cb)).catch(() => null);
    }
    await sleep(20);
  }
  const ok = await t.waitAllSeen();
  await p(cb => group.close(true, cb)).catch(() => null);
  await p(cb => client.close(cb)).catch(() => null);
  return ok;
}

t.finish(main());
