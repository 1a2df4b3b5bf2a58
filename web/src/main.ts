// The console's shell: sidebar, hash router, and the pages.
import { h } from './ui';
import { Page } from './page';
import { overview } from './pages/overview';
import { topics } from './pages/topics';
import { topic } from './pages/topic';
import { groups } from './pages/groups';
import { group } from './pages/group';
import { cluster } from './pages/cluster';
import { transactions } from './pages/transactions';
import { api, ApiError, Cluster, Session, setCsrf, onUnauthorized } from './api';

// [href, label, route pattern, shorter label for a phone's top bar]
const nav: [string, string, RegExp, string?][] = [
  ['#/', 'Overview', /^#?\/?$/],
  ['#/cluster', 'Cluster', /^#\/cluster/],
  ['#/topics', 'Topics', /^#\/topics/],
  ['#/groups', 'Consumer groups', /^#\/groups/, 'Groups'],
  ['#/transactions', 'Transactions', /^#\/transactions/, 'Txns'],
];

function logo(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  svg.setAttribute('width', '28');
  svg.setAttribute('height', '28');
  svg.setAttribute('aria-hidden', 'true');
  const rect = document.createElementNS(ns, 'rect');
  rect.setAttribute('width', '32');
  rect.setAttribute('height', '32');
  rect.setAttribute('rx', '7');
  rect.setAttribute('fill', '#14b8a6');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M5 20c4 0 4-8 8-8s4 8 8 8 4-8 6-8');
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', '#fff');
  path.setAttribute('stroke-width', '3');
  path.setAttribute('stroke-linecap', 'round');
  svg.append(rect, path);
  return svg;
}

function shell(user: string | undefined): { view: HTMLElement; links: HTMLAnchorElement[]; status: HTMLElement } {
  // A long label has a shorter one on a phone's top bar.
  const links = nav.map(([href, text, , short]) => h('a', { href, class: 'nav-link' },
    short ? [h('span', { class: 'long' }, text), h('span', { class: 'short' }, short)] : text));
  const status = h('div', { class: 'side-status' }, h('span', { class: 'dot' }), 'Connecting…');
  const view = h('main', { class: 'main', id: 'view' });
  const app = document.getElementById('app')!;
  app.className = 'app';
  app.replaceChildren(
    h('aside', { class: 'side' },
      h('a', { class: 'brand', href: '#/' }, logo(), h('span', null, 'Strom')),
      h('nav', { class: 'nav', 'aria-label': 'Main' }, links, h('a', { class: 'nav-link nav-ext', href: '/api', target: '_blank', rel: 'noopener' }, 'HTTP API ↗')),
      user ? h('div', { class: 'side-user' }, h('span', { class: 'side-user-name', title: 'Logged in as ' + user }, user),
        h('button', { class: 'btn side-logout', type: 'button', onclick: logout }, 'Log out')) : null,
      status),
    view);
  return { view, links, status };
}

let view: HTMLElement;
let links: HTMLAnchorElement[];
let status: HTMLElement;
let current: Page | null = null;

function route(): void {
  const hash = location.hash || '#/';
  current?.dispose();
  const page = new Page(view);
  current = page;
  nav.forEach(([, , re], i) => links[i].classList.toggle('active', re.test(hash)));
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p));
  window.scrollTo(0, 0);
  if (parts[0] === 'topics' && parts[1]) topic(page, parts[1], parts[2] || 'messages');
  else if (parts[0] === 'topics') topics(page);
  else if (parts[0] === 'groups' && parts[1]) group(page, parts[1]);
  else if (parts[0] === 'groups') groups(page);
  else if (parts[0] === 'cluster') cluster(page);
  else if (parts[0] === 'transactions') transactions(page);
  else overview(page);
}

// The sidebar's connection status, refreshed in the background.
async function heartbeat(): Promise<void> {
  if (!status?.isConnected) {
    window.setTimeout(heartbeat, 10000); // the login form is up
    return;
  }
  try {
    const c = await api<Cluster>('/api/v1/cluster');
    status.className = 'side-status ok';
    status.replaceChildren(h('span', { class: 'dot' }), `${c.cluster_id || 'cluster'} · ${c.brokers.length} broker${c.brokers.length === 1 ? '' : 's'}`);
  } catch (e) {
    status.className = 'side-status bad';
    status.replaceChildren(h('span', { class: 'dot' }), 'Cluster unreachable');
    status.title = (e as Error).message;
  }
  window.setTimeout(heartbeat, 10000);
}

async function logout(): Promise<void> {
  try {
    await api('/api/v1/logout', { method: 'POST' });
  } catch {
    // Gone already: show the login form anyway.
  }
  location.reload();
}

// loginForm replaces the console with the login form; a good login starts
// the console. The broker checks the password (the console logs in to it
// as the user).
function loginForm(): void {
  const app = document.getElementById('app')!;
  if (app.className === 'login') return; // already up
  current?.dispose();
  current = null;
  const user = h('input', { class: 'input', name: 'user', autocomplete: 'username', required: true });
  const pass = h('input', { class: 'input', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p', { class: 'login-error', role: 'alert' });
  const form = h('form', { class: 'card login-card', 'aria-label': 'Log in' },
    h('div', { class: 'brand login-brand' }, logo(), h('span', null, 'Strom')),
    h('h1', { class: 'page-title' }, 'Log in'),
    h('p', { class: 'muted' }, 'Use your Kafka user name and password: the broker checks them, and its ACLs decide what you can see and do.'),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'User'), user),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Password'), pass),
    msg,
    h('button', { class: 'btn btn-primary', type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    try {
      const s = await api<Session>('/api/v1/login', { method: 'POST', json: { user: user.value, password: pass.value } });
      pass.value = '';
      start(s);
    } catch (e) {
      msg.textContent = e instanceof ApiError && e.status === 401 ? 'Wrong user name or password.' : (e as Error).message;
    }
  });
  app.className = 'login';
  app.replaceChildren(form);
  document.title = 'Log in · Strom';
  user.focus();
}

let started = false;

function start(s: Session): void {
  setCsrf(s.csrf_token ?? '');
  ({ view, links, status } = shell(s.user));
  route();
  if (!started) {
    started = true;
    window.addEventListener('hashchange', () => { if (view?.isConnected) route(); });
    heartbeat();
  }
}

async function boot(): Promise<void> {
  let s: Session = { login_required: false };
  try {
    s = await api<Session>('/api/v1/session');
  } catch {
    // An older console without the endpoint: open.
  }
  if (s.login_required) onUnauthorized(loginForm);
  if (s.login_required && !s.user) loginForm();
  else start(s);
}

boot();
