'use strict';
// KafkaJS against a Strom cluster, bootstrapped from one broker: creates a
// topic with 3 partitions (CreateTopics goes to the controller), produces
// COUNT records, reads them back in a consumer group. Prints one JSON line.
// Usage: node kafkajs_cluster.js <broker> <topic>
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic] = process.argv.slice(2);
const count = 60;
const deadline = setTimeout(() => done(false, 'timed out'), 60000);

function done (ok, error, fields) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(Object.assign({ client: 'kafkajs', ok, error }, fields)) + '\n', () => process.exit(ok ? 0 : 1));
}

async function main () {
  const kafka = new Kafka({ clientId: 'kafkajs-cluster', brokers: [broker], logLevel: logLevel.WARN, retry: { retries: 10 } });
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const leaders = [...new Set(md.topics[0].partitions.map(p => p.leader))].sort();
  await admin.disconnect();

  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ value: `kafkajs-${i}` });
  await producer.send({ topic, messages, acks: -1 });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString());
        if (seen.size >= count) resolve();
      }
    }).catch(reject);
  });
  await consumer.disconnect();
  return { created, leaders, produced: count, consumed: seen.size };
}

main().then(f => done(f.consumed === count, null, f), err => done(false, String(err && err.stack ? err.stack : err)));
