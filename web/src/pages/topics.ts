import { api, Topic, enc, ApiError } from '../api';
import { Page } from '../page';
import { h, clear, card, table, num, rate, bytes, spinner, errorBox, empty, link, field, toast } from '../ui';

export function topics(page: Page): void {
  const form = createForm();
  form.hidden = true;
  const toggle = h('button', { class: 'btn btn-primary', type: 'button', id: 'new-topic' }, 'New topic');
  toggle.addEventListener('click', () => {
    form.hidden = !form.hidden;
    if (!form.hidden) (form.querySelector('input') as HTMLInputElement).focus();
  });
  page.title('Topics', { actions: [toggle] });
  const search = h('input', { class: 'input search', type: 'search', placeholder: 'Filter topics by name', 'aria-label': 'Filter topics' });
  const list = h('div', null, spinner());
  page.body.append(form, card(null, h('div', { class: 'toolbar' }, search), list));

  let all: Topic[] = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const rows = all.filter((t) => t.name.toLowerCase().includes(q));
    if (all.length === 0) {
      clear(list, empty('No topics yet', ['Create one with ', h('b', null, 'New topic'), ', or run ', h('code', null, 'strom demo'), ' to get a live stream of sensor readings.']));
      return;
    }
    clear(list, rows.length === 0 ? empty('No topic matches', `Nothing is called like “${search.value}”.`) : table([
      { title: 'Name', cell: (t) => link('#/topics/' + enc(t.name), t.name, 'strong') },
      { title: 'Partitions', num: true, cell: (t) => num(t.partitions) },
      { title: 'Replicas', num: true, cell: (t) => num(t.replication_factor) },
      { title: 'Records', num: true, cell: (t) => num(t.records) },
      { title: 'Size', num: true, cell: (t) => bytes(t.size_bytes) },
      { title: 'Rate', num: true, cell: (t) => rate(t.records_per_sec) },
    ], rows, { rowAttrs: (t) => ({ 'data-topic': t.name }) }));
  };
  search.addEventListener('input', render);
  page.poll(async () => {
    try {
      all = (await api<{ topics: Topic[] }>('/api/v1/topics')).topics;
      if (page.alive) render();
    } catch (e) {
      if (page.alive) clear(list, errorBox('Could not list topics', e, () => location.reload()));
    }
  }, 5000);
}

function createForm(): HTMLElement {
  const name = h('input', { class: 'input', name: 'name', required: true, placeholder: 'e.g. orders', autocomplete: 'off', pattern: '[A-Za-z0-9._\\-]+', maxlength: 249 });
  const parts = h('input', { class: 'input', name: 'partitions', type: 'number', min: 1, max: 10000, value: 3 });
  const retention = h('select', { class: 'input', name: 'retention' },
    h('option', { value: '' }, 'Cluster default'),
    h('option', { value: '3600000' }, '1 hour'),
    h('option', { value: '86400000' }, '1 day'),
    h('option', { value: '604800000' }, '7 days'),
    h('option', { value: '-1' }, 'Forever'));
  const compact = h('input', { type: 'checkbox', name: 'compact' });
  const msg = h('div', { class: 'form-msg', role: 'status' });
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create topic');
  const form = h('form', { class: 'card form', id: 'create-topic' },
    h('h2', { class: 'card-title' }, 'New topic'),
    h('div', { class: 'form-row' },
      field('Name', name, 'Letters, digits, . _ and -'),
      field('Partitions', parts),
      field('Retention', retention),
      h('label', { class: 'field check' }, compact, h('span', null, 'Compacted (keep the last record per key)'))),
    h('div', { class: 'form-actions' }, submit, msg));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const configs: Record<string, string> = {};
    if (retention.value) configs['retention.ms'] = retention.value;
    if (compact.checked) configs['cleanup.policy'] = 'compact';
    submit.disabled = true;
    clear(msg, 'Creating…');
    msg.className = 'form-msg';
    try {
      await api('/api/v1/topics', { method: 'POST', json: { name: name.value.trim(), partitions: Number(parts.value) || undefined, configs } });
      toast(`Topic ${name.value.trim()} created`);
      location.hash = '#/topics/' + enc(name.value.trim());
    } catch (e) {
      msg.className = 'form-msg bad';
      clear(msg, e instanceof ApiError ? e.message : String(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
