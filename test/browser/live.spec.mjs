// The live chart under a slow CPU. Run by live_test.go, which starts the
// broker with a topic whose history is larger than a stream's queue, and
// passes STROM_URL, ARTIFACTS, CHROMIUM, TOPIC, KEYS (series expected) and
// CPU_SLOWDOWN (CDP Emulation.setCPUThrottlingRate). Exits 1 on a failed
// check, a page error or a browser console error.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.STROM_URL;
const topic = process.env.TOPIC;
const keys = Number(process.env.KEYS);
const slowdown = Number(process.env.CPU_SLOWDOWN || '8');

const profile = mkdtempSync(join(tmpdir(), 'strom-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
});
context.setDefaultTimeout(30000);
const problems = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

const chartState = () => page.evaluate(() => {
  const el = document.querySelector('#live-chart .chart');
  return {
    sorted: el?.dataset.sorted,
    given: JSON.parse(el?.dataset.given || '{}'),
    drawn: JSON.parse(el?.dataset.drawn || '{}'),
    counters: document.querySelector('#live-counters')?.textContent ?? '',
  };
});

try {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: slowdown });
  await page.goto(`${url}/#/topics/${topic}/live`);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  // The history has arrived when every key has a series with points and
  // what was drawn is what was given (drawn lags given by a frame).
  let s;
  const deadline = Date.now() + 45000;
  for (;;) {
    s = await chartState();
    const labels = Object.keys(s.given);
    const total = labels.reduce((n, l) => n + s.given[l], 0);
    if (labels.length === keys && total >= 500 && labels.every((l) => s.drawn[l] === s.given[l])) break;
    if (Date.now() > deadline) break;
    await page.waitForTimeout(250);
  }
  console.log('chart:', JSON.stringify(s));
  await page.screenshot({ path: join(artifacts(), 'live-throttled.png') });
  assert.equal(s.sorted, '1', 'the x values given to uPlot ascend');
  assert.equal(Object.keys(s.given).length, keys, `one series per key: ${Object.keys(s.given)}`);
  for (const [label, n] of Object.entries(s.given)) {
    assert.ok(n >= 80, `series ${label} has ${n} points, want its history (about 85)`);
    assert.equal(s.drawn[label], n, `series ${label}: ${s.drawn[label]} of its ${n} points drawn`);
  }
  assert.doesNotMatch(s.counters, /dropped/, `records were dropped: ${s.counters}`);
  assert.deepEqual(problems, []);
  console.log('ok: every series has its points');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  if (problems.length) console.error('browser problems:\n  ' + problems.join('\n  '));
  await page.screenshot({ path: join(artifacts(), 'live-throttled-failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

function artifacts() {
  return process.env.ARTIFACTS;
}
