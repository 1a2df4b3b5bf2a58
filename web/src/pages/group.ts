import { api, ApiError, Cluster, Group, Stats, enc } from '../api';
import { unsupported } from './groups';
import { TimeChart } from '../charts';
import { Page } from '../page';
import { h, clear, card, table, num, spinner, errorBox, empty, badge, stateTone, field, select, link } from '../ui';

export function group(page: Page, name: string): void {
  page.title(name, { crumbs: [['#/groups', 'Consumer groups']], sub: h('div', { class: 'chips' }, spinner()) });
  const sub = page.head.querySelector('.chips') as HTMLElement;
  const lagTable = h('div', { id: 'group-lag' }, spinner());
  const members = h('div');
  const chartHost = h('div', { class: 'chart-host' });
  const chartNote = h('p', { class: 'muted small' });
  const reset = h('div');
  page.body.append(
    card('Lag over time (records behind)', chartHost, chartNote),
    card('Lag per partition', lagTable),
    h('div', { class: 'grid-2' }, card('Members', members), card('Reset offsets', reset)));
  const chart = new TimeChart(chartHost, { height: 200, zero: true, fill: true, points: true, emptyText: 'Collecting lag samples…' });
  page.onCleanup(() => chart.destroy());
  let formFor = '';

  page.poll(async () => {
    let g: Group;
    try {
      if (!(await api<Cluster>('/api/v1/cluster')).groups_supported) {
        if (page.alive) {
          clear(page.body, h('div', { class: 'card' }, empty('Consumer groups are not available', unsupported)));
          clear(sub);
        }
        return;
      }
      g = await api<Group>('/api/v1/groups/' + enc(name));
    } catch (e) {
      if (!page.alive) return;
      const gone = e instanceof ApiError && (e.status === 404 || e.code === 'groups_unsupported');
      clear(page.body, errorBox(gone ? 'No such consumer group' : 'Could not load the group', e));
      clear(sub);
      return;
    }
    if (!page.alive) return;
    clear(sub,
      h('span', { class: 'chip' }, h('span', { class: 'chip-label' }, 'State'), badge(g.state, stateTone(g.state))),
      h('span', { class: 'chip' }, h('span', { class: 'chip-label' }, 'Members'), h('b', null, num(g.members))),
      h('span', { class: 'chip' }, h('span', { class: 'chip-label' }, 'Total lag'), h('b', { id: 'group-total-lag' }, g.lag === null ? 'unknown' : num(g.lag))),
      h('span', { class: 'chip' }, h('span', { class: 'chip-label' }, 'Coordinator'), h('b', null, String(g.coordinator))));
    clear(lagTable, g.partitions.length === 0
      ? h('p', { class: 'muted' }, 'This group has no committed offsets yet.')
      : table([
        { title: 'Topic', cell: (p) => link('#/topics/' + enc(p.topic), p.topic) },
        { title: 'Partition', num: true, cell: (p) => String(p.partition) },
        { title: 'Committed', num: true, cell: (p) => (p.committed < 0 ? '–' : num(p.committed)) },
        { title: 'End offset', num: true, cell: (p) => num(p.end_offset) },
        { title: 'Lag', num: true, cell: (p) => (p.lag < 0 ? h('span', { class: 'muted', title: p.error ?? '' }, 'unknown') : num(p.lag)) },
        { title: 'Lag, log scale', cls: 'bar-cell', cell: (p) => lagBar(p.lag) },
        { title: 'Client', cell: (p) => p.client_id || '–' },
      ], g.partitions, { rowAttrs: (p) => ({ 'data-lag': p.lag }) }));
    clear(members, g.member_list.length === 0
      ? h('p', { class: 'muted' }, 'No active members: the group is empty, so its offsets can be reset.')
      : table([
        { title: 'Client', cell: (m) => m.client_id },
        { title: 'Host', cell: (m) => m.client_host },
        { title: 'Assigned', cell: (m) => m.assignments.map((a) => `${a.topic} [${a.partitions.join(', ')}]`).join('; ') || '–' },
      ], g.member_list));
    const topics = [...new Set(g.partitions.map((p) => p.topic))];
    const key = g.members + '|' + topics.join(',');
    if (key !== formFor) {
      formFor = key;
      resetForm(reset, name, g, topics);
    }
    try {
      const s = await api<Stats>('/api/v1/stats?group=' + enc(name));
      if (!page.alive) return;
      chart.set(['lag'], s.t.map((t) => t / 1000), [s.groups[name] ?? s.t.map(() => null)]);
      chartNote.textContent = s.t.length < 2 ? 'Collecting samples; the chart fills in as they arrive.' : `Sampled every ${s.interval_ms / 1000} s by the console.`;
    } catch {
      // The chart is a nicety; the tables above carry the state.
    }
  }, 3000);
}

function resetForm(host: HTMLElement, name: string, g: Group, topics: string[]): void {
  if (g.members > 0) {
    clear(host, h('p', { class: 'muted' }, `The group has ${g.members} active member${g.members === 1 ? '' : 's'}. Stop its consumers to reset its offsets (Kafka only allows it for empty groups).`));
    return;
  }
  const topic = select(topics.map((t) => [t, t] as [string, string]), topics[0] ?? '', { class: 'input', name: 'topic' });
  const to = select([['earliest', 'Earliest (reprocess everything)'], ['latest', 'Latest (skip to the end)'], ['offset', 'An offset'], ['time', 'A time']], 'latest', { class: 'input', name: 'to' });
  const offset = h('input', { class: 'input', type: 'number', min: 0, placeholder: 'offset', hidden: true });
  const when = h('input', { class: 'input', type: 'datetime-local', step: 1, hidden: true });
  const msg = h('div', { class: 'form-msg', role: 'status' });
  const preview = h('button', { class: 'btn', type: 'button' }, 'Preview');
  const apply = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Reset');
  to.addEventListener('change', () => {
    offset.hidden = to.value !== 'offset';
    when.hidden = to.value !== 'time';
  });
  const body = (dry: boolean) => {
    let target = to.value;
    if (target === 'offset') target = offset.value || '0';
    if (target === 'time') target = '@' + new Date(when.value || Date.now()).getTime();
    return { topic: topic.value, to: target, dry_run: dry };
  };
  const run = async (dry: boolean) => {
    msg.className = 'form-msg';
    clear(msg, dry ? 'Computing…' : 'Resetting…');
    try {
      const r = await api<{ offsets: { partition: number; previous: number; offset: number }[] }>(`/api/v1/groups/${enc(name)}/reset`, { method: 'POST', json: body(dry) });
      msg.className = 'form-msg ok';
      clear(msg, (dry ? 'Would set: ' : 'Set: ') + r.offsets.map((o) => `p${o.partition} ${o.previous < 0 ? '–' : o.previous} → ${o.offset}`).join(', '));
    } catch (e) {
      msg.className = 'form-msg bad';
      clear(msg, (e as Error).message);
    }
  };
  preview.addEventListener('click', () => run(true));
  const form = h('form', { class: 'form' },
    topics.length === 0 ? h('p', { class: 'muted' }, 'The group has no committed offsets to reset.') : null,
    h('div', { class: 'form-row' }, field('Topic', topic), field('To', to), offset, when),
    h('div', { class: 'form-actions' }, preview, apply, msg));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (window.confirm(`Reset the offsets of “${name}” on ${topic.value}?`)) run(false);
  });
  clear(host, form);
}

// lagBar draws a lag on a fixed log scale, 1 to a million records, so
// that a lag of 5 is a sliver (it was a full red bar when it was the
// largest): green under 100 records, amber under 10,000, red above.
export function lagBar(lag: number): HTMLElement {
  const width = lag <= 0 ? 0 : Math.min(100, (Math.log10(1 + lag) / 6) * 100);
  const tone = lag < 100 ? 'lag-low' : lag < 10000 ? 'lag-mid' : 'lag-high';
  return h('div', { class: 'bar', title: lag < 0 ? 'unknown' : `${lag} records behind` },
    h('div', { class: 'bar-fill ' + tone, style: `width:${width.toFixed(1)}%`, 'data-width': width.toFixed(1) }));
}
