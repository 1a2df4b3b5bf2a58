// The cluster, transactions and partition views in a real browser, against
// three KRaft nodes. Run by cluster_test.go, twice:
//   PHASE=healthy   all three up: brokers, controller, quorum voters; a
//                   replicated topic's leader, epoch, replicas and ISR; an
//                   open transaction and its producer; the compaction card
//   PHASE=degraded  broker DOWN stopped: under-replicated partitions on the
//                   cluster page and the topic page
// Env: STROM_URL, ARTIFACTS, CHROMIUM, TOPIC, COMPACTED, TXN, TXN_TOPIC, DOWN.
// Any failed step, page error or browser console error exits 1.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.STROM_URL;
const artifacts = process.env.ARTIFACTS;
const phase = process.env.PHASE;
const topic = process.env.TOPIC;
const down = Number(process.env.DOWN ?? '0');

const profile = mkdtempSync(join(tmpdir(), 'strom-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(20000);

const problems = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('response', async (r) => {
  if (r.status() >= 500) problems.push(`${r.status()} from ${r.url()}: ${(await r.text().catch(() => '')).trim()}`);
});
page.on('console', (m) => {
  if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
});
const shot = (name) => page.screenshot({ path: join(artifacts, name), fullPage: true });
let step = '';
const begin = (s) => {
  step = s;
  console.log('step:', s);
};
const cells = async (row) => (await row.locator('td').allInnerTexts()).map((s) => s.trim());

try {
  if (phase === 'healthy') {
    begin('the cluster page lists three brokers, one controller, and the quorum');
    await page.goto(url + '/#/cluster');
    await page.getByRole('link', { name: 'Cluster', exact: true }).waitFor();
    await page.locator('#cluster-brokers tr[data-broker]').nth(2).waitFor();
    assert.equal(await page.locator('#cluster-brokers tr[data-broker]').count(), 3);
    assert.equal(await page.locator('#cluster-brokers .badge', { hasText: 'controller' }).count(), 1);
    const summary = await page.locator('#quorum-summary').innerText();
    const m = /Leader (\d+), epoch (\d+), high watermark ([\d,]+)/.exec(summary);
    assert.ok(m, `quorum summary: ${summary}`);
    const voters = page.locator('#cluster-quorum tr[data-voter]');
    assert.equal(await voters.count(), 3);
    assert.equal(await page.locator(`#cluster-quorum tr[data-voter="${m[1]}"] .badge`, { hasText: 'leader' }).count(), 1);
    const controllerRow = page.locator('#cluster-brokers tr[data-broker]', { has: page.locator('.badge', { hasText: 'controller' }) });
    assert.equal(await controllerRow.getAttribute('data-broker'), m[1], 'the controller is the quorum leader');
    await page.locator('#cluster-partitions', { hasText: 'Every partition is fully replicated' }).waitFor();
    await shot('cluster-01-healthy.png');

    begin('the topic page shows leader, epoch, replicas and ISR');
    await page.goto(url + `/#/topics/${topic}/partitions`);
    const rows = page.locator('#partition-replication tr[data-partition]');
    await rows.nth(2).waitFor();
    for (let i = 0; i < 3; i++) {
      const c = await cells(rows.nth(i));
      // Partition, Leader, Leader epoch, Replicas, In sync, Offline replicas, ...
      assert.match(c[1], /^[123]$/, `partition ${i}: leader ${c[1]}`);
      assert.match(c[2], /^\d+$/, `partition ${i}: leader epoch ${c[2]}`);
      assert.deepEqual(c[3].split(', ').sort(), ['1', '2', '3'], `partition ${i}: replicas ${c[3]}`);
      assert.deepEqual(c[4].split(', ').sort(), ['1', '2', '3'], `partition ${i}: in sync ${c[4]}`);
      assert.equal(c[5], '–');
    }
    assert.equal(await page.locator('#partition-replication tr.row-warn').count(), 0);
    await shot('cluster-02-topic.png');

    begin('the open transaction\'s producer on its topic\'s partition 0');
    await page.goto(url + `/#/topics/${process.env.TXN_TOPIC}/partitions`);
    const prod = page.locator('#partition-producers tr[data-producer]', { hasText: 'offset' });
    await prod.first().waitFor();
    assert.equal((await cells(prod.first()))[0], '0');
    await shot('cluster-03-producers.png');

    begin('the transactions page lists the open transaction');
    await page.getByRole('link', { name: 'Transactions' }).click();
    const txn = page.locator(`#transactions tr[data-txn="${process.env.TXN}"]`);
    await txn.waitFor();
    const tc = await cells(txn);
    assert.equal(tc[1], 'Ongoing');
    assert.match(tc[7], new RegExp(`${process.env.TXN_TOPIC} \\[0\\]`));
    await shot('cluster-04-transactions.png');

    begin('a compacted topic has the compaction card');
    await page.goto(url + `/#/topics/${process.env.COMPACTED}/partitions`);
    await page.locator('#partition-cleaner tr[data-cleaner-partition="0"]').waitFor();
    assert.match(await page.locator('#partition-cleaner').innerText(), /cleanup\.policy=compact/);
    await page.goto(url + `/#/topics/${topic}/partitions`);
    await page.locator('#partition-replication tr[data-partition]').first().waitFor();
    // Loaded: the producers card has its table or its "no producer" note.
    await page.locator('#partition-producers :is(p, table)').first().waitFor();
    assert.ok(await page.locator('#partition-cleaner').isHidden(), 'no compaction card for a delete-policy topic');
  } else {
    begin(`with broker ${down} stopped, the cluster page shows under-replicated partitions`);
    await page.goto(url + '/#/cluster');
    const under = page.locator('#cluster-partitions tr[data-under-replicated]', { hasText: topic });
    await under.nth(2).waitFor();
    for (const c of await Promise.all([0, 1, 2].map((i) => cells(under.nth(i))))) {
      // Topic, Partition, Leader, Replicas, In sync, ...
      assert.equal(c[3].split(', ').length, 3);
      assert.ok(!c[4].split(', ').includes(String(down)), `broker ${down} still in sync: ${c[4]}`);
    }
    await page.locator('#cluster-brokers', { hasText: `broker ${down}` }).waitFor();
    await shot('cluster-05-degraded.png');

    begin('and the topic page highlights them');
    await under.first().locator('a').click();
    await page.locator('#replication-note', { hasText: 'under-replicated' }).waitFor();
    assert.equal(await page.locator('#partition-replication tr.row-warn').count(), 3);
    await shot('cluster-06-topic-degraded.png');
  }

  begin('no errors in the browser');
  assert.deepEqual(problems, []);
  console.log('ok: all steps passed');
} catch (e) {
  console.error(`FAILED at step "${step}": ${e.message}`);
  if (problems.length) console.error('browser problems:\n  ' + problems.join('\n  '));
  await page.screenshot({ path: join(artifacts, 'cluster-failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
