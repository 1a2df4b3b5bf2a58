'use strict';
// The bookkeeping of the kill scripts (kafkajs_kill.js, kafkanode_kill.js):
// the values a producer was acknowledged, the values a consumer read, the
// longest pause between two reads, and the one JSON line each prints last.

function tally (client, seconds) {
  const t = { acked: new Set(), seen: new Set(), lastSeen: 0, maxGap: 0, ready: false };
  const deadline = setTimeout(() => t.done(false, 'timed out'), (Number(seconds) + 120) * 1000);
  // read notes a consumed value; the first prints "ready" (the test then
  // kills a broker).
  t.read = v => {
    const now = Date.now();
    if (t.lastSeen && now - t.lastSeen > t.maxGap) t.maxGap = now - t.lastSeen;
    t.lastSeen = now;
    t.seen.add(v);
    if (!t.ready) { t.ready = true; process.stdout.write('ready\n'); }
  };
  t.allSeen = () => [...t.acked].every(v => t.seen.has(v));
  // waitAllSeen polls for a minute until every acknowledged value was read.
  t.waitAllSeen = async () => {
    for (let i = 0; i < 600 && !t.allSeen(); i++) await new Promise(resolve => setTimeout(resolve, 100));
    return t.allSeen();
  };
  t.done = (ok, error) => {
    clearTimeout(deadline);
    const missing = [...t.acked].filter(v => !t.seen.has(v)).length;
    process.stdout.write(JSON.stringify({ client, ok, error, produced: t.acked.size, consumed: t.acked.size - missing, max_gap_ms: t.maxGap }) + '\n',
      () => process.exit(ok ? 0 : 1));
  };
  // finish ends the script with run's outcome.
  t.finish = run => run.then(ok => t.done(ok && t.acked.size > 0, ok ? null : 'acknowledged records not consumed'),
    err => t.done(false, String(err && err.stack ? err.stack : err)));
  return t;
}

module.exports = { tally };
