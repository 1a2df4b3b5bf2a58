// A topic's Partitions tab: replication (leader, epoch, replicas, ISR),
// the producers writing to each partition (DescribeProducers) and, for a
// compacted topic, the log cleaner's state. The topic page's poll calls
// the returned update with each fresh description.
import { api, ApiError, TopicCleaner, TopicDetail, TopicProducers, enc } from '../api';
import { Page } from '../page';
import { h, clear, card, table, num, bytes, spinner, errorBox, badge, time, ago, duration } from '../ui';

export function partitionsTab(page: Page, panel: HTMLElement, name: string): (d: TopicDetail) => void {
  const replication = h('div', { id: 'partition-replication' }, spinner());
  const producers = h('div', { id: 'partition-producers' }, spinner());
  // Shown only for a compacted topic.
  const cleaner = h('div', { id: 'partition-cleaner' });
  const cleanerCard = card('Compaction', cleaner);
  cleanerCard.hidden = true;
  clear(panel,
    card('Replication', replication),
    cleanerCard,
    card('Producers', producers));
  return (d: TopicDetail) => {
    renderReplication(replication, d);
    loadProducers(page, producers, name);
    loadCleaner(page, cleanerCard, cleaner, name);
  };
}

function renderReplication(el: HTMLElement, d: TopicDetail): void {
  const ids = (xs: number[]) => (xs.length ? xs.join(', ') : '–');
  const note = d.offline || d.under_replicated
    ? h('p', { class: 'alert alert-error', role: 'alert', id: 'replication-note' },
      [d.offline ? `${d.offline} partition${d.offline > 1 ? 's have' : ' has'} no leader (offline). ` : '',
        d.under_replicated ? `${d.under_replicated} partition${d.under_replicated > 1 ? 's are' : ' is'} under-replicated (fewer replicas in sync than assigned).` : ''])
    : null;
  clear(el, note, table([
    { title: 'Partition', num: true, cell: (p) => String(p.partition) },
    { title: 'Leader', num: true, cell: (p) => (p.leader >= 0 ? String(p.leader) : badge('none', 'bad')) },
    { title: 'Leader epoch', num: true, cell: (p) => (p.leader_epoch >= 0 ? String(p.leader_epoch) : '–') },
    { title: 'Replicas', cell: (p) => ids(p.replicas) },
    { title: 'In sync', cell: (p) => [ids(p.isr), p.under_replicated ? [' ', badge('under-replicated', 'warn')] : null] },
    { title: 'Offline replicas', cell: (p) => ids(p.offline_replicas) },
    { title: 'Start offset', num: true, cell: (p) => num(p.start_offset) },
    { title: 'End offset', num: true, cell: (p) => num(p.end_offset) },
    { title: 'Records', num: true, cell: (p) => num(p.records) },
    { title: 'Size', num: true, cell: (p) => bytes(p.size_bytes) },
    { title: '', cell: (p) => (p.error ? badge(p.error, 'bad') : null) },
  ], d.partition_details, {
    rowAttrs: (p) => ({ 'data-partition': String(p.partition), class: p.leader < 0 ? 'row-bad' : p.under_replicated ? 'row-warn' : null }),
  }));
}

async function loadProducers(page: Page, el: HTMLElement, name: string): Promise<void> {
  let r: TopicProducers;
  try {
    r = await api<TopicProducers>(`/api/v1/topics/${enc(name)}/producers`);
  } catch (e) {
    if (page.alive) {
      clear(el, e instanceof ApiError && e.status === 501 ? h('p', { class: 'muted' }, (e as Error).message) : errorBox('Could not describe the producers', e));
    }
    return;
  }
  if (!page.alive) return;
  const rows = r.partitions.flatMap((p) => (p.producers.length || p.error
    ? (p.producers.length ? p.producers : [null]).map((pr) => ({ p, pr }))
    : []));
  clear(el, rows.length === 0
    ? h('p', { class: 'muted' }, 'No producer has written to this topic recently (idempotent and transactional producers show here while the partitions keep their state).')
    : table([
      { title: 'Partition', num: true, cell: (x) => String(x.p.partition) },
      { title: 'Producer id', num: true, cell: (x) => (x.pr ? String(x.pr.producer_id) : '–') },
      { title: 'Epoch', num: true, cell: (x) => (x.pr ? String(x.pr.producer_epoch) : '–') },
      { title: 'Last sequence', num: true, cell: (x) => (x.pr ? String(x.pr.last_sequence) : '–') },
      { title: 'Last write', cell: (x) => (x.pr && x.pr.last_timestamp_ms >= 0 ? h('span', { title: time(x.pr.last_timestamp_ms) }, ago(x.pr.last_timestamp_ms)) : '–') },
      { title: 'Open transaction from', num: true, cell: (x) => (x.pr?.txn_start_offset != null ? badge('offset ' + num(x.pr.txn_start_offset), 'warn') : '–') },
      { title: '', cell: (x) => (x.p.error ? badge(x.p.error, 'bad') : null) },
    ], rows, { rowAttrs: (x) => ({ 'data-producer': x.pr ? String(x.pr.producer_id) : null }) }));
}

async function loadCleaner(page: Page, host: HTMLElement, el: HTMLElement, name: string): Promise<void> {
  let c: TopicCleaner;
  try {
    c = await api<TopicCleaner>(`/api/v1/topics/${enc(name)}/cleaner`);
  } catch (e) {
    if (page.alive) {
      host.hidden = false;
      clear(el, errorBox('Could not read the log cleaner\'s state', e));
    }
    return;
  }
  if (!page.alive) return;
  host.hidden = !c.compacted;
  if (!c.compacted) return;
  const trigger = c.min_cleanable_dirty_ratio;
  const head = h('p', { class: 'muted small' },
    `cleanup.policy=${c.cleanup_policy}. A partition is cleaned once its dirty ratio (the share of its cleanable bytes not cleaned yet) reaches `,
    trigger === null ? 'min.cleanable.dirty.ratio' : h('b', null, String(trigger)), '.');
  if (!c.available) {
    clear(el, head, h('p', { class: 'muted', id: 'cleaner-message' }, c.message ?? 'The log cleaner\'s state is not available.'));
    return;
  }
  const unreported = c.partitions.some((p) => !p.reported)
    ? h('p', { class: 'muted small' }, 'The broker the console reads reports no cleaner state for the partitions marked “not reported”: their log is on another broker, or they are replicated (replicated partitions are not compacted yet).')
    : null;
  clear(el, head, unreported, table([
    { title: 'Partition', num: true, cell: (p) => String(p.partition) },
    { title: 'Dirty ratio', num: true, cell: (p) => (p.reported ? [p.dirty_ratio.toFixed(2), trigger !== null && p.dirty_ratio >= trigger ? [' ', badge('due', 'warn')] : null] : '–') },
    { title: 'Dirty', num: true, cell: (p) => (p.reported ? bytes(p.dirty_bytes) : '–') },
    { title: 'Last cleaned', cell: (p) => (!p.reported ? 'not reported' : p.last_clean_ms === null ? 'never (since the broker started)' : h('span', { title: time(p.last_clean_ms) }, ago(p.last_clean_ms))) },
    { title: 'Took', num: true, cell: (p) => (p.reported && p.last_clean_ms !== null ? duration(p.last_clean_seconds * 1000) : '–') },
  ], c.partitions, { rowAttrs: (p) => ({ 'data-cleaner-partition': String(p.partition) }) }));
}
