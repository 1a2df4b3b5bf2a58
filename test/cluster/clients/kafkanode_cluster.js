'use strict';
// kafka-node 5 against a Strom cluster, bootstrapped from one broker:
// creates a topic with 3 partitions, produces COUNT records (to each
// partition's leader), reads them back in a ConsumerGroup. One JSON line.
// Usage: node kafkanode_cluster.js <broker> <topic>
const kafka = require('kafka-node');

const [broker, topic] = process.argv.slice(2);
const count = 60;
const deadline = setTimeout(() => done(false, "timed out"), 60000);

function done (ok, error, fields) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(Object.assign({ client: 'kafka-node', ok, error }, fields)) + '\n', () => process.exit(ok ? 0 : 1));
}

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const p = (f) => new Promise((resolve, reject) => f((err, v) => err ? reject(err) : resolve(v)));

async function main () {
  const client = new kafka.KafkaClient({ kafkaHost: broker, connectTimeout: 5000, requestTimeout: 10000 });
  await new Promise((resolve, reject) => { client.once('ready', resolve); client.once('error', reject); });
  log('ready');
  const created = await p(cb => client.createTopics([{ topic, partitions: 3, replicationFactor: 1 }], cb));
  // Wait until every partition has a leader in this client's metadata.
  for (let i = 0; ; i++) {
    await p(cb => client.loadMetadataForTopics([topic], cb)).catch(() => null);
    await p(cb => client.refreshMetadata([topic], cb)).catch(() => null);
    const parts = (client.topicMetadata || {})[topic];
    if (parts && Object.keys(parts).length === 3 && Object.values(parts).every(x => x.leader >= 0)) break;
    if (i > 100) throw new Error('no leaders for ' + topic);
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  log('created', JSON.stringify(created));
  const leaders = [...new Set(Object.values(client.topicMetadata[topic]).map(x => x.leader))].sort();
  const producer = new kafka.Producer(client, { requireAcks: -1, partitionerType: 2 });
  if (!producer.ready) await new Promise(resolve => producer.once('ready', resolve));
  log('producer ready');
  for (let i = 0; i < count; i++) {
    await p(cb => producer.send([{ topic, partition: i % 3, messages: [`kafka-node-${i}`] }], cb));
  }
  log('produced');
  const seen = new Set();
  const group = new kafka.ConsumerGroup({ kafkaHost: broker, groupId: `${topic}-group`, fromOffset: 'earliest', autoCommit: true }, [topic]);
  await new Promise((resolve, reject) => {
    group.on('message', m => { seen.add(m.value.toString()); if (seen.size >= count) resolve(); });
    group.on('error', reject);
  });
  log('consumed');
  await p(cb => group.close(true, cb));
  await p(cb => client.close(cb));
  return { created, leaders, produced: count, consumed: seen.size };
}

main().then(f => done(f.consumed === count, null, f), err => done(false, String(err && err.stack ? err.stack : err)));
