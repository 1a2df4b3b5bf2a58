'use strict';
// Plumbing shared by the compatibility scripts in this directory: where to
// connect, a hard deadline so a script can never hang a test run, a few
// assertion helpers, and the one-line JSON summary that the Go tests in
// test/compat parse (always the last line on stdout; logs go to stderr).

const util = require('util');

// Usage: node <script> [broker] [topic]
// Environment fallbacks: KAFKA_BROKER, KAFKA_TOPIC, COMPAT_COUNT (records per
// batch), COMPAT_TIMEOUT_MS (the hard deadline).
function settings (client) {
  return {
    client,
    broker: process.argv[2] || process.env.KAFKA_BROKER || '127.0.0.1:9092',
    topic: process.argv[3] || process.env.KAFKA_TOPIC || `compat-${client}-${Date.now()}`,
    count: positiveInt(process.env.COMPAT_COUNT, 20),
    timeoutMs: positiveInt(process.env.COMPAT_TIMEOUT_MS, 60000)
  };
}

function positiveInt (s, dflt) {
  const n = Number(s);
  return Number.isInteger(n) && n > 0 ? n : dflt;
}

// run calls main(settings) and turns its outcome into the summary line and
// the exit code: 0 when main resolves, 1 when it throws, rejects, or the
// deadline passes first. main's resolved object is merged into the summary.
function run (client, main) {
  const s = settings(client);
  const started = Date.now();
  let finished = false;

  const finish = (code, fields) => {
    if (finished) return;
    finished = true;
    const summary = Object.assign({
      client,
      ok: code === 0,
      broker: s.broker,
      topic: s.topic,
      elapsed_ms: Date.now() - started
    }, fields);
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(code));
  };
  const fail = (err) => {
    process.stderr.write(`${client}: ${err && err.stack ? err.stack : util.inspect(err)}\n`);
    finish(1, { error: String(err && err.message ? err.message : err) });
  };

  // The deadline timer is deliberately not unref'd: it is what ends a
  // client that waits forever on a broker that never answers.
  setTimeout(() => fail(new Error(`timed out after ${s.timeoutMs} ms`)), s.timeoutMs);
  process.on('unhandledRejection', fail);
  process.on('uncaughtException', fail);

  Promise.resolve()
    .then(() => main(s))
    .then((fields) => finish(0, fields || {}), fail);
}

// expectEqual throws unless got and want are deeply equal (JSON-wise).
function expectEqual (what, got, want) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) {
    throw new Error(`${what}: got ${g}, want ${w}`);
  }
}

function expect (cond, what) {
  if (!cond) throw new Error(what);
}

// A fixed timestamp base (whole seconds, an hour ago) so that records can be
// looked up by time and are never old enough for retention to remove.
function timestampBase () {
  return Math.floor(Date.now() / 1000) * 1000 - 3600 * 1000;
}

// A value with multi-byte UTF-8, so that a broker or codec that mangles bytes
// or lengths shows up as a mismatch.
function valueFor (client, codec, i) {
  return `value-${i}-${codec}-${client}-ü€✓`;
}

module.exports = { run, expect, expectEqual, timestampBase, valueFor };
