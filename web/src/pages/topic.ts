import { api, ApiError, Config, Delivery, TopicDetail, enc } from '../api';
import { Page } from '../page';
import { h, clear, card, table, num, rate, bytes, spinner, errorBox, field, toast, badge, select } from '../ui';
import { messages } from './messages';
import { live } from './live';
import { partitionsTab } from './partitions';

const tabs: [string, string][] = [
  ['messages', 'Messages'],
  ['live', 'Live'],
  ['produce', 'Produce'],
  ['partitions', 'Partitions'],
  ['configs', 'Configs'],
];

export function topic(page: Page, name: string, tab: string): void {
  if (!tabs.some(([t]) => t === tab)) tab = 'messages';
  // Hidden until the broker says this user may delete the topic.
  const del = h('button', { class: 'btn btn-danger', type: 'button', hidden: true }, 'Delete topic');
  del.addEventListener('click', async () => {
    if (!window.confirm(`Delete topic “${name}” and all its records? This cannot be undone.`)) return;
    try {
      await api('/api/v1/topics/' + enc(name), { method: 'DELETE' });
      toast(`Topic ${name} deleted`);
      location.hash = '#/topics';
    } catch (e) {
      toast((e as Error).message, 'bad');
    }
  });
  const sub = h('div', { class: 'chips' }, spinner());
  page.title(name, { crumbs: [['#/topics', 'Topics']], actions: [del], sub });
  const tabBar = h('nav', { class: 'tabs', role: 'tablist' },
    tabs.map(([t, label]) => h('a', { href: `#/topics/${enc(name)}/${t}`, role: 'tab', class: 'tab' + (t === tab ? ' active' : ''), 'aria-selected': String(t === tab) }, label)));
  const panel = h('div', { class: 'tab-panel' });
  page.body.append(tabBar, panel);

  let detail: TopicDetail | null = null;
  // The Partitions tab, laid out before the first poll.
  const updatePartitions = tab === 'partitions' ? partitionsTab(page, panel, name) : null;
  const refresh = page.poll(async () => {
    try {
      detail = await api<TopicDetail>('/api/v1/topics/' + enc(name));
      if (!page.alive) return;
      const ops = detail.authorized_operations;
      del.hidden = !(ops === undefined || ops.includes('DELETE') || ops.includes('ALL'));
      clear(sub,
        chip('Partitions', num(detail.partitions)),
        chip('Records', num(detail.records)),
        chip('Size', bytes(detail.size_bytes)),
        chip('Rate', rate(detail.records_per_sec)),
        detail.under_replicated ? h('a', { href: `#/topics/${enc(name)}/partitions`, class: 'chip chip-warn' }, h('span', { class: 'chip-label' }, 'Under-replicated'), h('b', null, num(detail.under_replicated))) : null,
        detail.offline ? h('a', { href: `#/topics/${enc(name)}/partitions`, class: 'chip chip-bad' }, h('span', { class: 'chip-label' }, 'Offline'), h('b', null, num(detail.offline))) : null);
      updatePartitions?.(detail);
    } catch (e) {
      if (!page.alive) return;
      if (e instanceof ApiError && e.status === 404) {
        clear(page.body, errorBox(`Topic “${name}” does not exist`, 'It may have been deleted. Pick another on the Topics page.'));
        clear(sub);
        del.remove();
        return;
      }
      clear(sub, h('span', { class: 'muted' }, 'Could not load the topic: ' + (e as Error).message));
    }
  }, 5000);

  switch (tab) {
    case 'messages':
      messages(page, panel, name, () => detail);
      break;
    case 'live':
      live(page, panel, name);
      break;
    case 'produce':
      produce(panel, name, () => detail, refresh);
      break;
    case 'partitions':
      break; // partitionsTab, above
    case 'configs':
      configs(page, panel, name);
      break;
  }
}

function chip(label: string, value: string): HTMLElement {
  return h('span', { class: 'chip' }, h('span', { class: 'chip-label' }, label), h('b', null, value));
}

function produce(panel: HTMLElement, name: string, detail: () => TopicDetail | null, refresh: () => void): void {
  const key = h('input', { class: 'input', name: 'key', placeholder: 'optional, e.g. s1', autocomplete: 'off' });
  const value = h('textarea', { class: 'input mono', name: 'value', rows: 6, placeholder: '{"sensor": "s1", "value": 21.5}' });
  const kind = select([['json', 'JSON (sent as JSON text)'], ['text', 'Text (sent as typed)']], 'json', { class: 'input', name: 'kind' });
  const headers = h('textarea', { class: 'input mono', name: 'headers', rows: 2, placeholder: 'one per line: name=value' });
  const partition = select([['', 'Chosen by key']], '', { class: 'input', name: 'partition' });
  const fill = (d: TopicDetail) => {
    for (let i = 0; i < d.partitions; i++) partition.append(h('option', { value: String(i) }, 'Partition ' + i));
  };
  const d = detail();
  if (d) fill(d);
  else api<TopicDetail>('/api/v1/topics/' + enc(name)).then(fill, () => {});
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Produce');
  const result = h('div', { class: 'form-msg', role: 'status', id: 'produce-result' });
  const form = h('form', { class: 'card form', id: 'produce-form' },
    h('div', { class: 'form-grid' },
      field('Key', key),
      field('Partition', partition),
      h('div', { class: 'span-2' }, field('Value', value)),
      field('Value is', kind),
      field('Headers', headers)),
    h('div', { class: 'form-actions' }, submit, result));
  clear(panel, form);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const rec: Record<string, unknown> = {};
    if (key.value !== '') rec.key = key.value;
    if (kind.value === 'json') {
      try {
        rec.value = value.value.trim() === '' ? null : JSON.parse(value.value);
      } catch (e) {
        result.className = 'form-msg bad';
        clear(result, 'The value is not valid JSON: ' + (e as Error).message + '. Pick “Text” to send it as typed.');
        return;
      }
    } else {
      rec.value = value.value;
    }
    const hs: Record<string, string> = {};
    for (const line of headers.value.split('\n')) {
      if (!line.trim()) continue;
      const i = line.indexOf('=');
      if (i <= 0) {
        result.className = 'form-msg bad';
        clear(result, `Header “${line}”: write it as name=value.`);
        return;
      }
      hs[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    if (Object.keys(hs).length) rec.headers = hs;
    if (partition.value !== '') rec.partition = Number(partition.value);
    submit.disabled = true;
    result.className = 'form-msg';
    clear(result, 'Sending…');
    try {
      const r = await api<{ results: Delivery[] }>(`/api/v1/topics/${enc(name)}/records`, { method: 'POST', json: { records: [rec] } });
      const d = r.results[0];
      if (d.error) throw new Error(d.error);
      result.className = 'form-msg ok';
      clear(result, `Delivered to partition ${d.partition} at offset ${d.offset}. `,
        h('a', { href: `#/topics/${enc(name)}/messages` }, 'See it in Messages →'));
      refresh();
    } catch (e) {
      result.className = 'form-msg bad';
      clear(result, (e as Error).message);
    } finally {
      submit.disabled = false;
    }
  });
}

function configs(page: Page, panel: HTMLElement, name: string): void {
  const list = h('div', null, spinner());
  const showAll = h('input', { type: 'checkbox' });
  const cname = h('input', { class: 'input', placeholder: 'name, e.g. retention.ms', autocomplete: 'off', 'aria-label': 'Config name' });
  const cvalue = h('input', { class: 'input', placeholder: 'value, e.g. 86400000', autocomplete: 'off', 'aria-label': 'Config value' });
  const msg = h('div', { class: 'form-msg', role: 'status' });
  const setForm = h('form', { class: 'inline-form' }, cname, cvalue, h('button', { class: 'btn', type: 'submit' }, 'Set'), msg);
  clear(panel, card(null,
    h('div', { class: 'toolbar' }, h('label', { class: 'check' }, showAll, h('span', null, 'Show defaults')), setForm),
    list));
  let rows: Config[] = [];
  const render = () => {
    const shown = showAll.checked ? rows : rows.filter((c) => !c.default);
    clear(list, shown.length === 0
      ? h('p', { class: 'muted' }, 'Every config has its default value. Tick “Show defaults” to list them.')
      : table([
        { title: 'Name', cell: (c) => h('code', null, c.name) },
        { title: 'Value', cell: (c) => (c.sensitive ? '(hidden)' : c.value ?? '–'), cls: 'mono wrap' },
        { title: 'Source', cell: (c) => badge(c.source.replace(/_/g, ' '), c.default ? 'muted' : 'ok') },
      ], shown));
  };
  showAll.addEventListener('change', render);
  const load = async () => {
    try {
      rows = (await api<{ configs: Config[] }>(`/api/v1/topics/${enc(name)}/configs`)).configs;
      if (page.alive) render();
    } catch (e) {
      if (page.alive) clear(list, errorBox('Could not load the configs', e, load));
    }
  };
  setForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!cname.value.trim()) return;
    try {
      const r = await api<{ configs: Config[] }>(`/api/v1/topics/${enc(name)}/configs`, { method: 'PATCH', json: { set: { [cname.value.trim()]: cvalue.value } } });
      rows = r.configs;
      msg.className = 'form-msg ok';
      clear(msg, `${cname.value.trim()} set`);
      render();
    } catch (e) {
      msg.className = 'form-msg bad';
      clear(msg, (e as Error).message);
    }
  });
  load();
}
