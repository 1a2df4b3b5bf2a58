'use strict';
// KafkaJS on seed 001's flow while the test kills a broker: a consumer in
// a group and a producer (acks=-1, one record every 20 ms) on an RF=3
// topic, bootstrapped from every broker. Prints "ready" once the consumer
// has its first record (the test then kills a broker and restarts it),
// produces for SECONDS, then waits until every acknowledged record was
// consumed and prints one JSON line.
// Usage: node kafkajs_kill.js <brokers,comma-separated> <topic> <seconds>
const { Kafka, logLevel } = require('kafkajs');

const { tally } = require('./killtally');

const [brokers, topic, seconds] = process.argv.slice(2);
const t = tally('kafkajs', seconds);

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function main () {
  const kafka = new Kafka({ clientId: 'kafkajs-kill', brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, maxRetryTime: 2000 } });
  const consumer = kafka.consumer({ groupId: `${topic}-group`, retry: { retries: 30, maxRetryTime: 2000 } });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => t.read(message.value.toString()) });
  const producer = kafka.producer({ retry: { retries: 30, maxRetryTime: 2000 } });
  await producer.connect();
  const end = Date.now() + Number(seconds) * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const v = `kafkajs-${i}`;
    try {
      await producer.send({ topic, messages: [{ value: v }], acks: -1 });
      t.acked.add(v);
    } catch (err) {
      process.stderr.write(`send ${v}: ${err}\n`);
    }
    await sleep(20);
  }
  await producer.disconnect();
  const ok = await t.waitAllSeen();
  await consumer.disconnect();
  return ok;
}

t.finish(main());
