import { api, KRecord, Page as PageData, TopicDetail, enc } from '../api';
import { Fmt, preview, show } from '../format';
import { Page } from '../page';
import { h, clear, card, spinner, errorBox, empty, field, select, time, num } from '../ui';

// The message browser: a page of records from a position, filtered on
// the server, shown as JSON, text or hex.
export function messages(page: Page, panel: HTMLElement, name: string, detail: () => TopicDetail | null): void {
  const partition = select([['', 'All partitions']], '', { class: 'input', name: 'partition' });
  const start = select([['newest', 'Newest first'], ['oldest', 'Oldest first'], ['offset', 'From offset'], ['time', 'From time']], 'newest', { class: 'input', name: 'start' });
  const offset = h('input', { class: 'input', name: 'offset', type: 'number', min: 0, placeholder: 'offset', hidden: true });
  const when = h('input', { class: 'input', name: 'time', type: 'datetime-local', step: 1, hidden: true });
  const limit = select([['20', '20'], ['50', '50'], ['100', '100'], ['500', '500']], '50', { class: 'input', name: 'limit' });
  const fmt = select([['auto', 'Auto'], ['json', 'JSON'], ['text', 'Text'], ['hex', 'Hex']], 'auto', { class: 'input', name: 'format' });
  const key = h('input', { class: 'input', name: 'key', placeholder: 'key equals', autocomplete: 'off' });
  const where = h('input', { class: 'input mono', name: 'where', placeholder: 'value > 20   or   sensor == s3', autocomplete: 'off' });
  const header = h('input', { class: 'input', name: 'header', placeholder: 'header name=value', autocomplete: 'off' });
  const load = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Load');
  const status = h('div', { class: 'muted small', role: 'status' });
  const results = h('div', { class: 'records' });
  const more = h('div', { class: 'pager' });
  const form = h('form', { class: 'filters', id: 'message-filters' },
    h('div', { class: 'form-row' },
      field('Partition', partition), field('Start', start), h('div', { class: 'field-slot' }, field('Offset', offset), field('Time', when)),
      field('Limit', limit), field('Show as', fmt)),
    h('div', { class: 'form-row' }, field('Key', key), field('Where (JSON value)', where), field('Header', header), h('div', { class: 'field align-end' }, load)));
  (offset.parentElement as HTMLElement).hidden = true;
  (when.parentElement as HTMLElement).hidden = true;
  clear(panel, card(null, form, status, results, more));

  start.addEventListener('change', () => {
    (offset.parentElement as HTMLElement).hidden = offset.hidden = start.value !== 'offset';
    (when.parentElement as HTMLElement).hidden = when.hidden = start.value !== 'time';
    if (start.value === 'offset' && partition.value === '') partition.value = '0';
    if (start.value === 'time' && !when.value) {
      const d = new Date(Date.now() - 3600_000);
      d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
      when.value = d.toISOString().slice(0, 19);
    }
  });
  let records: KRecord[] = [];
  fmt.addEventListener('change', () => render());

  const fillPartitions = (d: TopicDetail) => {
    if (partition.options.length === d.partitions + 1) return;
    const keep = partition.value;
    clear(partition, h('option', { value: '' }, 'All partitions'), Array.from({ length: d.partitions }, (_, i) => h('option', { value: String(i) }, 'Partition ' + i)));
    partition.value = keep;
  };

  const query = (offsetOverride?: number, orderOverride?: string): string => {
    const q = new URLSearchParams();
    let order = 'newest';
    if (partition.value !== '') q.set('partition', partition.value);
    if (start.value === 'oldest') order = 'oldest';
    if (start.value === 'offset') {
      order = 'oldest';
      q.set('offset', offset.value || '0');
    }
    if (start.value === 'time' && when.value) {
      order = 'oldest';
      q.set('timestamp', String(new Date(when.value).getTime()));
    }
    if (offsetOverride !== undefined) {
      q.delete('timestamp');
      q.set('offset', String(offsetOverride));
    }
    q.set('order', orderOverride ?? order);
    q.set('limit', limit.value);
    if (key.value) q.set('key', key.value);
    if (where.value.trim()) q.set('where', where.value.trim());
    if (header.value.trim()) q.set('header', header.value.trim());
    return q.toString();
  };

  const fetchPage = async (qs: string) => {
    clear(results, spinner());
    clear(more);
    status.textContent = '';
    load.disabled = true;
    try {
      if (!detail()) fillPartitions(await api<TopicDetail>('/api/v1/topics/' + enc(name)));
      const p = await api<PageData>(`/api/v1/topics/${enc(name)}/messages?${qs}`);
      if (!page.alive) return;
      records = p.records;
      const filtered = qs.includes('key=') || qs.includes('where=') || qs.includes('header=');
      render();
      status.textContent = `${num(p.records.length)} record${p.records.length === 1 ? '' : 's'}, ${p.order} first` +
        (filtered ? ` matching the filter (${num(p.scanned)} scanned)` : '') + (p.partial ? ' — stopped early, the cluster was slow' : '');
      if (p.next_offset !== null && partition.value !== '') {
        clear(more, h('button', { class: 'btn', type: 'button', onclick: () => fetchPage(query(p.next_offset!, p.order)) },
          p.order === 'newest' ? 'Older records →' : 'Newer records →'));
      } else if (partition.value === '' && p.records.length > 0) {
        clear(more, h('span', { class: 'muted small' }, 'Pick a partition to page through its records.'));
      }
    } catch (e) {
      if (page.alive) clear(results, errorBox('Could not read records', e, () => fetchPage(qs)));
    } finally {
      load.disabled = false;
    }
  };

  const render = () => {
    if (records.length === 0) {
      clear(results, empty('No records here', 'Nothing matches this position and filter. Produce one on the Produce tab, or start from the oldest record.'));
      return;
    }
    const f = fmt.value as Fmt;
    const body = h('tbody');
    for (const r of records) {
      const row = h('tr', { class: 'rec', tabindex: 0, 'data-offset': r.offset, 'data-partition': r.partition },
        h('td', { class: 'num' }, String(r.partition)),
        h('td', { class: 'num' }, String(r.offset)),
        h('td', { class: 'nowrap' }, time(r.timestamp)),
        h('td', { class: 'mono key' }, preview(r.key, r.key_encoding, 40)),
        h('td', { class: 'mono val' }, preview(r.value, r.value_encoding)));
      const detailRow = h('tr', { class: 'rec-detail', hidden: true },
        h('td', { colspan: 5 },
          h('div', { class: 'rec-grid' },
            h('div', null, h('div', { class: 'label' }, 'Value', r.value_encoding ? ` · ${r.value_encoding}` : '', ` · ${r.size} bytes`), h('pre', { class: 'code' }, show(r.value, r.value_encoding, f))),
            h('div', null,
              h('div', { class: 'label' }, 'Key', r.key_encoding ? ` · ${r.key_encoding}` : ''), h('pre', { class: 'code' }, show(r.key, r.key_encoding, f === 'json' ? 'auto' : f)),
              h('div', { class: 'label' }, 'Headers'),
              r.headers.length === 0 ? h('p', { class: 'muted small' }, 'none')
                : h('pre', { class: 'code' }, r.headers.map((x) => `${x.key}: ${x.value ?? (x.value_base64 !== undefined ? 'base64:' + x.value_base64 : '(null)')}`).join('\n'))))));
      const toggle = () => {
        detailRow.hidden = !detailRow.hidden;
        row.classList.toggle('open', !detailRow.hidden);
      };
      row.addEventListener('click', toggle);
      row.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          toggle();
        }
      });
      body.append(row, detailRow);
    }
    clear(results, h('div', { class: 'table-wrap' }, h('table', { class: 'table records-table' },
      h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Part.'), h('th', { class: 'num' }, 'Offset'), h('th', null, 'Timestamp'), h('th', null, 'Key'), h('th', null, 'Value'))),
      body)));
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    fetchPage(query());
  });
  const d = detail();
  if (d) fillPartitions(d);
  fetchPage(query());
}
