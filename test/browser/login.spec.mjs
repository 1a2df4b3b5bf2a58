// The console's login in a real browser. Run by login_test.go, which
// starts a broker whose only Kafka listener is SASL_PLAINTEXT, with ACLs
// on, users admin (a super user) and reader (DESCRIBE and READ on every
// topic), the topic ro-orders, and a page of another site (EVIL_URL) that
// posts a form to the console. It passes:
//   STROM_URL   the console, e.g. http://127.0.0.1:40123
//   EVIL_URL    the other site's page, http://evil.example:<port>/
//   ARTIFACTS   where screenshots go
//   CHROMIUM    the browser binary
// Any failed step, page error or unexpected console error exits 1.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.STROM_URL;
const evilURL = process.env.EVIL_URL;
const artifacts = process.env.ARTIFACTS;
const topic = 'ro-orders';

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
// Statuses the steps cause on purpose (a wrong password, a refused
// delete, calls after logout, the refused cross-site post) show as failed
// resources in the browser's console; only those are expected.
let expected = null;
const watch = (page, label) => {
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expected && expected.test(m.text())) return;
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

// call makes an API call from the page, with the session's CSRF token (as
// the front end does), and returns the status and JSON reply.
const call = (method, path) => page.evaluate(async ([method, path]) => {
  const s = await (await fetch('/api/v1/session')).json();
  const headers = s.csrf_token ? { 'X-CSRF-Token': s.csrf_token } : {};
  const r = await fetch(path, { method, headers });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}, [method, path]);

const login = async (user, password) => {
  await page.locator('form[aria-label="Log in"] input[name=user]').fill(user);
  await page.locator('form[aria-label="Log in"] input[name=password]').fill(password);
  await page.locator('form[aria-label="Log in"] button[type=submit]').click();
};

try {
  begin('the console asks for a login');
  await page.goto(url + '/');
  await page.locator('form[aria-label="Log in"]').waitFor();
  await shot('login-01-form.png');

  begin('a wrong password is refused');
  expected = /status of 401/;
  await login('reader', 'wrong');
  await page.locator('.login-error', { hasText: 'Wrong user name or password' }).waitFor();
  expected = null;

  begin('the read-only user logs in and sees the topics');
  await login('reader', 'reader-pw');
  await page.locator('.side-user-name', { hasText: 'reader' }).waitFor();
  await page.getByRole('link', { name: 'Topics', exact: true }).click();
  await page.locator('a', { hasText: topic }).first().click();
  await page.locator('h1', { hasText: topic }).waitFor();
  await page.locator('.chip', { hasText: 'Partitions' }).waitFor();
  await shot('login-02-reader-topic.png');

  begin('the read-only user has no delete button');
  assert.equal(await page.getByRole('button', { name: 'Delete topic' }).isVisible(), false, 'the delete button shows for a read-only user');

  begin('and the API refuses the read-only user a delete');
  expected = /status of 403/;
  const del = await call('DELETE', `/api/v1/topics/${topic}`);
  expected = null;
  assert.equal(del.status, 403, JSON.stringify(del));
  assert.equal(del.body.code, 'not_authorized');
  const still = await call('GET', `/api/v1/topics/${topic}`);
  assert.equal(still.status, 200, `${topic} after the refused delete: ${JSON.stringify(still)}`);

  begin('logout ends the session');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('form[aria-label="Log in"]').waitFor();
  expected = /status of 401/;
  const after = await call('GET', '/api/v1/topics');
  expected = null;
  assert.equal(after.status, 401, JSON.stringify(after));

  begin('the admin logs in and has the delete button');
  await login('admin', 'admin-pw');
  await page.locator('.side-user-name', { hasText: 'admin' }).waitFor();
  await page.goto(`${url}/#/topics/${topic}`);
  await page.getByRole('button', { name: 'Delete topic' }).waitFor({ state: 'visible' });
  await shot('login-03-admin-topic.png');

  begin('a cross-site POST is refused, the admin logged in or not');
  const evil = await context.newPage();
  watch(evil, 'evil');
  // 404: the browser's own /favicon.ico on the console's origin.
  expected = /status of 40[34]/;
  await evil.goto(evilURL);
  await evil.waitForURL(`${url}/api/v1/topics`);
  const refused = await evil.locator('body').textContent();
  assert.match(refused, /cross_origin/, `the cross-site POST got: ${refused}`);
  await evil.close();
  const made = await call('GET', '/api/v1/topics/evil-made');
  expected = null;
  assert.equal(made.status, 404, `the cross-site POST made a topic: ${JSON.stringify(made)}`);

  begin('no errors in the browser');
  assert.deepEqual(problems, []);
  console.log('ok: all steps passed');
} catch (e) {
  console.error(`FAILED at step "${step}": ${e.message}`);
  if (problems.length) console.error('browser problems:\n  ' + problems.join('\n  '));
  await page.screenshot({ path: join(artifacts, 'login-failure.png'), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
