// The console in a real browser, step by step. Run by browser_test.go,
// which starts the broker and the demo generator and passes:
//   STROM_URL      the console, e.g. http://127.0.0.1:40123
//   ARTIFACTS      where screenshots go
//   CHROMIUM       the browser binary (Debian's /usr/bin/chromium)
//   EXPECT_GROUPS  1 when the broker has consumer groups
// Any failed step, page error or browser console error exits 1.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.STROM_URL;
// The same console by name: the broker listens on 127.0.0.1, and both
// names must work.
const localURL = url.replace('//127.0.0.1:', '//localhost:');
// evil.example resolves to the broker too (--host-resolver-rules below):
// a DNS-rebinding page, which the console must refuse.
const evilURL = url.replace('//127.0.0.1:', '//evil.example:');
const artifacts = process.env.ARTIFACTS;
const expectGroups = process.env.EXPECT_GROUPS === '1';
const topic = 'browser-orders';

const profile = mkdtempSync(join(tmpdir(), 'strom-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP evil.example 127.0.0.1'],
  viewport: { width: 1280, height: 860 },
});
context.setDefaultTimeout(15000);

const problems = [];
// Requests the steps make on purpose with a bad filter answer 400, which
// the browser reports as a failed resource; those are expected, nothing else.
let expectBadRequest = false;
const watch = (page, label) => {
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectBadRequest && /status of 400/.test(m.text())) return;
    problems.push(`${label}: console error: ${m.text()}`);
  });
};

const page = context.pages()[0] ?? (await context.newPage());
watch(page, 'desktop');
const shot = (name, p = page) => p.screenshot({ path: join(artifacts, name), fullPage: false });
let step = '';
const begin = (s) => {
  step = s;
  console.log('step:', s);
};

try {
  begin('overview shows the broker and the demo topic');
  await page.goto(url + '/');
  await page.locator('.stat-label', { hasText: 'Brokers' }).waitFor();
  await page.locator('table >> text=controller').waitFor();
  await page.locator('a', { hasText: 'streaming-data' }).first().waitFor();
  // The throughput chart draws once the sampler has two samples.
  await page.locator('#view .chart:not(.chart-waiting)').first().waitFor({ timeout: 20000 });
  await shot('01-overview.png');

  begin('a single node: the cluster page has one broker, the controller, and a metadata quorum of one voter it leads');
  await page.getByRole('link', { name: 'Cluster', exact: true }).click();
  await page.locator('#cluster-brokers tr[data-broker]').first().waitFor();
  assert.equal(await page.locator('#cluster-brokers tr[data-broker]').count(), 1);
  await page.locator('#cluster-brokers .badge', { hasText: 'controller' }).waitFor();
  await page.locator('#quorum-summary', { hasText: 'Leader 0,' }).waitFor();
  assert.equal(await page.locator('#cluster-quorum tr[data-voter]').count(), 1);
  await page.locator('#cluster-quorum tr[data-voter="0"] .badge', { hasText: 'leader' }).waitFor();
  await page.locator('#cluster-partitions', { hasText: 'fully replicated' }).waitFor();
  await shot('01b-cluster-single.png');

  begin('create a topic from the form');
  await page.getByRole('link', { name: 'Topics', exact: true }).click();
  await page.locator('#new-topic').click();
  await page.locator('#create-topic input[name=name]').fill(topic);
  await page.locator('#create-topic input[name=partitions]').fill('2');
  await page.locator('#create-topic button[type=submit]').click();
  await page.waitForURL(`**/#/topics/${topic}`);
  await page.locator('h1', { hasText: topic }).waitFor();
  await page.locator('.chip', { hasText: 'Partitions' }).locator('b', { hasText: '2' }).waitFor();

  begin('produce a message from the form');
  await page.getByRole('tab', { name: 'Produce' }).click();
  await page.locator('#produce-form input[name=key]').fill('order-1');
  await page.locator('#produce-form textarea[name=value]').fill('{"item": "coffee", "qty": 2}');
  await page.locator('#produce-form textarea[name=headers]').fill('source=browser-test');
  await page.locator('#produce-form button[type=submit]').click();
  await page.locator('#produce-result', { hasText: 'Delivered to partition' }).waitFor();
  await shot('02-produce.png');

  begin('see the message in the browser, decoded as JSON');
  await page.getByRole('tab', { name: 'Messages' }).click();
  const row = page.locator('tr.rec', { hasText: 'coffee' });
  await row.waitFor();
  assert.match(await row.innerText(), /order-1/);
  await row.click();
  const detail = page.locator('tr.rec-detail:not([hidden]) pre.code').first();
  await detail.waitFor();
  assert.match(await detail.innerText(), /"item": "coffee"/);
  assert.match(await page.locator('tr.rec-detail:not([hidden])').innerText(), /source: browser-test/);
  await shot('03-messages.png');

  begin('a bad filter shows an error, not a broken page');
  expectBadRequest = true;
  await page.locator('#message-filters input[name=where]').fill('qty >> 1');
  await page.locator('#message-filters button[type=submit]').click();
  await page.locator('.alert-error', { hasText: 'where' }).waitFor();
  await page.locator('#message-filters input[name=where]').fill('qty >= 2');
  await page.locator('#message-filters button[type=submit]').click();
  await page.locator('tr.rec', { hasText: 'coffee' }).waitFor();
  expectBadRequest = false;

  begin('the live chart of the demo stream gains points');
  await page.goto(url + '/#/topics/streaming-data/live');
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  const chart = page.locator('#live-chart .chart');
  await page.waitForFunction(() => Number(document.querySelector('#live-chart .chart')?.dataset.points) >= 5, null, { timeout: 20000 });
  assert.equal(await page.locator('#chart-field').inputValue(), 'value');
  // New readings arrive: more points, and the newest one moves right.
  const before = Number(await chart.getAttribute('data-points'));
  const lastX = Number(await chart.getAttribute('data-last-x'));
  await page.waitForFunction(([n, x]) => {
    const el = document.querySelector('#live-chart .chart');
    return Number(el?.dataset.points) >= n + 10 && Number(el?.dataset.lastX) >= x + 1;
  }, [before, lastX], { timeout: 20000 });
  const after = Number(await chart.getAttribute('data-points'));
  console.log(`live chart: ${before} -> ${after} points`);
  assert.ok(await page.locator('#live-chart .u-legend').isVisible());
  await page.locator('#live-tail li').first().waitFor();
  await shot('04-live-chart.png');

  begin('consumer groups');
  await page.goto(url + '/#/groups');
  const groupRow = page.locator('tr[data-group="streaming-dashboard"]');
  const unavailable = page.locator('.empty', { hasText: 'not available' });
  await groupRow.or(unavailable).first().waitFor({ timeout: 20000 });
  const haveGroups = await groupRow.isVisible();
  console.log(`groups: ${haveGroups ? 'available' : 'not available'}`);
  if (expectGroups) {
    assert.ok(haveGroups, 'the demo consumer group is listed');
    await groupRow.locator('a').click();
    await page.locator('#group-lag tr[data-lag]').first().waitFor({ timeout: 20000 });
    const lags = await page.locator('#group-lag tr[data-lag]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.lag)));
    console.log('lag per partition:', lags.join(', '));
    assert.equal(lags.length, 3, 'one lag row per partition of streaming-data');
    assert.ok(lags.every((l) => l >= 0), 'every lag is known');
    // Lag bars are on a fixed log scale: a small lag is a short bar, not
    // a full one because it is the largest (issue 23).
    const widths = await page.locator('#group-lag tr[data-lag] .bar-fill').evaluateAll((els) => els.map((e) => Number(e.dataset.width)));
    lags.forEach((l, i) => assert.ok(Math.abs(widths[i] - Math.min(100, (Math.log10(1 + l) / 6) * 100)) < 0.2, `lag ${l}: bar ${widths[i]}% wide`));
    if (Math.max(...lags) < 1000) assert.ok(Math.max(...widths) < 51, `lags ${lags} under 1000 drawn up to ${Math.max(...widths)}%`);
    await page.locator('#group-total-lag').waitFor();
    await shot('05-group.png');
  } else {
    await shot('05-groups.png');
  }

  begin('a phone-sized screen, the console at http://localhost');
  const phone = await context.newPage();
  watch(phone, 'phone');
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(localURL + '/#/topics/streaming-data/live');
  await phone.locator('#live-status', { hasText: 'Live' }).waitFor();
  await phone.waitForFunction(() => Number(document.querySelector('#live-chart .chart')?.dataset.points) >= 3, null, { timeout: 20000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  // Every tab is in view, none scrolled out of the row (issue 23).
  const tabRights = await phone.locator('.tabs .tab').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().right));
  assert.ok(tabRights.length >= 4 && tabRights.every((r) => r <= 390), `tabs end at ${tabRights.map(Math.round)}, past 390 px`);
  await shot('06-phone-live.png', phone);
  await phone.goto(localURL + '/#/');
  await phone.locator('.stat-label', { hasText: 'Brokers' }).waitFor();
  await shot('07-phone-overview.png', phone);
  await phone.close();

  begin('a page on another name that resolves to the broker is refused');
  const evil = await context.newPage();
  for (const path of ['/', '/api/v1/topics']) {
    const resp = await evil.goto(evilURL + path);
    assert.equal(resp.status(), 403, `${evilURL}${path}: status ${resp.status()}`);
    assert.match(await resp.text(), /host_not_allowed/);
  }
  await evil.close();

  begin('no errors in the browser');
  assert.deepEqual(problems, []);
  console.log('ok: all steps passed');
} catch (e) {
  console.error(`FAILED at step "${step}": ${e.message}`);
  if (problems.length) console.error('browser problems:\n  ' + problems.join('\n  '));
  await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
