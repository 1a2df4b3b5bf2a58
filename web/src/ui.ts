// DOM helpers. Text always goes in as text nodes, never as HTML, so that
// topic names and record contents cannot inject markup.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === 'class') {
        el.className = String(v);
      } else if (v === true) {
        el.setAttribute(k, '');
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function spinner(text = 'Loading…'): HTMLElement {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spin' }), text);
}

export function errorBox(title: string, err: unknown, retry?: () => void): HTMLElement {
  const msg = err instanceof Error ? err.message : String(err);
  return h('div', { class: 'alert alert-error', role: 'alert' },
    h('strong', null, title),
    h('p', null, msg),
    retry ? h('button', { class: 'btn btn-small', type: 'button', onclick: () => retry() }, 'Try again') : null);
}

export function empty(title: string, hint: Child): HTMLElement {
  return h('div', { class: 'empty' }, h('strong', null, title), h('p', null, hint));
}

export function card(title: Child, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, ...body);
}

// A figure with its label, for the rows of figures atop a page.
export function stat(label: string, value: string, cls = ''): HTMLElement {
  return h('div', { class: 'stat ' + cls }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

export function badge(text: string, tone = ''): HTMLElement {
  return h('span', { class: 'badge' + (tone ? ' badge-' + tone : '') }, text);
}

export function stateTone(state: string): string {
  switch (state) {
    case 'Stable': return 'ok';
    case 'Empty': return 'muted';
    case 'Dead': return 'bad';
    default: return 'warn';
  }
}

export function link(href: string, text: Child, cls = ''): HTMLAnchorElement {
  return h('a', { href, class: cls || null }, text);
}

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
  num?: boolean;
  cls?: string;
}

export function table<T>(cols: Column<T>[], rows: T[], opts: { rowAttrs?: (row: T) => Attrs; cls?: string } = {}): HTMLElement {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table ' + (opts.cls ?? '') },
      h('thead', null, h('tr', null, cols.map((c) => h('th', { class: c.num ? 'num' : c.cls ?? null }, c.title)))),
      h('tbody', null, rows.map((r) => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : null,
        cols.map((c) => h('td', { class: c.num ? 'num' : c.cls ?? null }, c.cell(r))))))));
}

const nf = new Intl.NumberFormat('en-US');
export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : nf.format(n);
}

export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n === 0) return '0/s';
  if (n < 10) return n.toFixed(1) + '/s';
  return nf.format(Math.round(n)) + '/s';
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
}

export function time(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// A length of time: 850 ms, 12.5 s, 4 min 10 s, 2 h 5 min.
export function duration(ms: number): string {
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function ago(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

// A short-lived message at the bottom of the screen.
export function toast(text: string, tone: 'ok' | 'bad' = 'ok'): void {
  let host = document.getElementById('toasts');
  if (!host) {
    host = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.append(host);
  }
  const t = h('div', { class: 'toast toast-' + tone }, text);
  host.append(t);
  setTimeout(() => t.remove(), 2500);
}

export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, hint ? h('span', { class: 'field-hint' }, hint) : null);
}

export function select(options: [string, string][], value: string, attrs: Attrs = {}): HTMLSelectElement {
  const s = h('select', attrs, options.map(([v, t]) => h('option', { value: v }, t)));
  s.value = value;
  return s;
}
