// The console's shell: sidebar, hash router, and the pages.
import { h } from './ui';
import { Page } from './page';
import { overview } from './pages/overview';
import { topics } from './pages/topics';
import { topic } from './pages/topic';
import { groups } from './pages/groups';
import { group } from './pages/group';
import { api, Cluster } from './api';

const nav: [string, string, RegExp][] = [
  ['#/', 'Overview', /^#?\/?$/],
  ['#/topics', 'Topics', /^#\/topics/],
  ['#/groups', 'Consumer groups', /^#\/groups/],
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

function shell(): { view: HTMLElement; links: HTMLAnchorElement[]; status: HTMLElement } {
  // "Consumer groups" is "Groups" on a phone's top bar.
  const links = nav.map(([href, text]) => h('a', { href, class: 'nav-link' },
    text.startsWith('Consumer ') ? [h('span', { class: 'long' }, 'Consumer groups'), h('span', { class: 'short' }, 'Groups')] : text));
  const status = h('div', { class: 'side-status' }, h('span', { class: 'dot' }), 'Connecting…');
  const view = h('main', { class: 'main', id: 'view' });
  const app = document.getElementById('app')!;
  app.className = 'app';
  app.replaceChildren(
    h('aside', { class: 'side' },
      h('a', { class: 'brand', href: '#/' }, logo(), h('span', null, 'Strom')),
      h('nav', { class: 'nav', 'aria-label': 'Main' }, links, h('a', { class: 'nav-link nav-ext', href: '/api', target: '_blank', rel: 'noopener' }, 'HTTP API ↗')),
      status),
    view);
  return { view, links, status };
}

const { view, links, status } = shell();
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
  else overview(page);
}

// The sidebar's connection status, refreshed in the background.
async function heartbeat(): Promise<void> {
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

window.addEventListener('hashchange', route);
route();
heartbeat();
