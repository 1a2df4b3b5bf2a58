'use strict';
// KafkaJS over a secured listener: produce records and read the end offset
// back with the admin client (KafkaJS consumes only with a group; the Go
// test reads the records). The TLS and SASL settings come as JSON in
// argv[4]: {ca, cert, key} PEM file paths and {mechanism, username,
// password}, in KafkaJS's names.
//
// Usage: node kafkajs_secure.js <broker> <topic> <security-json>

const fs = require('fs');
const { Kafka, Partitioners, logLevel } = require('kafkajs');
const { run, expectEqual } = require('./common');

run('kafkajs', async ({ broker, topic, count }) => {
  const sec = JSON.parse(process.argv[4]);
  const ssl = sec.ssl && {
    ca: [fs.readFileSync(sec.ssl.ca, 'utf8')],
    cert: sec.ssl.cert && fs.readFileSync(sec.ssl.cert, 'utf8'),
    key: sec.ssl.key && fs.readFileSync(sec.ssl.key, 'utf8'),
    servername: 'localhost'
  };
  const kafka = new Kafka({
    clientId: 'strom-compat-kafkajs-secure',
    brokers: [broker],
    ssl,
    sasl: sec.sasl,
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    retry: { retries: 2 }
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
  await admin.connect();
  await producer.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    const messages = [];
    for (let i = 0; i < count; i++) messages.push({ key: `k${i}`, value: `v${i}`, partition: 0 });
    await producer.send({ topic, messages });
    const offsets = await admin.fetchTopicOffsets(topic);
    expectEqual('end offset', offsets[0].high, String(count));
    return { produced: count };
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
});
