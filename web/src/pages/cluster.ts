// The cluster page: brokers, the metadata quorum (DescribeQuorum) and the
// partitions that are under-replicated or offline, refreshed every few
// seconds (the same polling as the overview).
import { api, ClusterStatus, PartitionState, QuorumReplica, enc } from '../api';
import { Page } from '../page';
import { h, clear, card, table, num, spinner, errorBox, empty, link, badge, ago, stat } from '../ui';

export function cluster(page: Page): void {
  page.title('Cluster', { sub: 'Brokers, the metadata quorum and partition replication, refreshed every few seconds.' });
  const summary = h('div', { class: 'stats' }, spinner());
  const brokers = h('div', { id: 'cluster-brokers' }, spinner());
  const quorum = h('div', { id: 'cluster-quorum' }, spinner());
  const parts = h('div', { id: 'cluster-partitions' }, spinner());
  page.body.append(summary,
    h('div', { class: 'grid-2' }, card('Brokers', brokers), card('Metadata quorum', quorum)),
    card('Partition replication', parts));

  page.poll(async () => {
    let s: ClusterStatus;
    try {
      s = await api<ClusterStatus>('/api/v1/cluster/status');
    } catch (e) {
      if (page.alive) clear(summary, errorBox('Could not load the cluster', e));
      return;
    }
    if (!page.alive) return;
    const bad = (n: number) => (n > 0 ? 'stat-bad' : '');
    clear(summary,
      stat('Brokers', num(s.brokers.length), s.missing_brokers.length ? 'stat-bad' : ''),
      stat('Controller', s.controller >= 0 ? String(s.controller) : 'none', s.controller < 0 ? 'stat-bad' : ''),
      stat('Partitions', num(s.partitions)),
      stat('Under-replicated', num(s.under_replicated.length), bad(s.under_replicated.length)),
      stat('Offline', num(s.offline.length), bad(s.offline.length)));

    clear(brokers,
      table([
        { title: 'ID', num: true, cell: (b) => String(b.id) },
        { title: 'Host', cell: (b) => `${b.host}:${b.port}` },
        { title: 'Rack', cell: (b) => b.rack ?? '–' },
        { title: 'Role', cell: (b) => (b.controller ? badge('controller', 'ok') : null) },
      ], s.brokers, { rowAttrs: (b) => ({ 'data-broker': String(b.id) }) }),
      s.missing_brokers.length
        ? h('p', { class: 'alert alert-error', role: 'alert' },
          `Not listed by the cluster (down or fenced), yet named as replicas: broker${s.missing_brokers.length > 1 ? 's' : ''} ${s.missing_brokers.join(', ')}.`)
        : null);

    const q = s.quorum;
    if (q.error) {
      clear(quorum, errorBox('Could not describe the quorum', q.error));
    } else if (!q.available) {
      clear(quorum, h('p', { class: 'muted', id: 'quorum-message' }, q.message ?? 'No metadata quorum to show.'));
    } else {
      const row = (kind: string) => (r: QuorumReplica) => ({ 'data-voter': kind === 'voter' ? String(r.id) : null, class: r.lag > 0 ? 'row-warn' : null });
      const cols = [
        { title: 'ID', num: true, cell: (r: QuorumReplica) => [String(r.id), r.id === q.leader ? [' ', badge('leader', 'ok')] : null] },
        { title: 'Log end', num: true, cell: (r: QuorumReplica) => num(r.log_end_offset) },
        { title: 'Lag', num: true, cell: (r: QuorumReplica) => (r.lag > 0 ? badge(num(r.lag), 'warn') : '0') },
        { title: 'Last fetch', cell: (r: QuorumReplica) => (r.id === q.leader ? '–' : r.last_fetch_ms === null ? 'never' : ago(r.last_fetch_ms)) },
        { title: 'Caught up', cell: (r: QuorumReplica) => (r.id === q.leader ? '–' : r.last_caught_up_ms === null ? 'never' : ago(r.last_caught_up_ms)) },
      ];
      clear(quorum,
        h('p', { class: 'muted small', id: 'quorum-summary' },
          `Leader ${q.leader}, epoch ${q.epoch}, high watermark ${num(q.high_watermark)}.`),
        table(cols, q.voters ?? [], { rowAttrs: row('voter') }),
        q.observers?.length ? [h('h3', { class: 'card-sub' }, 'Observers'), table(cols, q.observers, { rowAttrs: row('observer') })] : null);
    }

    if (s.under_replicated.length === 0 && s.offline.length === 0) {
      clear(parts, empty('Every partition is fully replicated', `All ${num(s.partitions)} partitions of ${num(s.topics)} topics have a leader and every replica in sync.`));
    } else {
      const cols = [
        { title: 'Topic', cell: (p: PartitionState) => link(`#/topics/${enc(p.topic)}/partitions`, p.topic) },
        { title: 'Partition', num: true, cell: (p: PartitionState) => String(p.partition) },
        { title: 'Leader', num: true, cell: (p: PartitionState) => (p.leader >= 0 ? String(p.leader) : badge('none', 'bad')) },
        { title: 'Replicas', cell: (p: PartitionState) => p.replicas.join(', ') },
        { title: 'In sync', cell: (p: PartitionState) => p.isr.join(', ') || '–' },
        { title: 'Offline replicas', cell: (p: PartitionState) => p.offline_replicas.join(', ') || '–' },
      ];
      clear(parts,
        s.offline.length ? [h('h3', { class: 'card-sub' }, `Offline (no leader): ${s.offline.length}`), table(cols, s.offline, { rowAttrs: () => ({ class: 'row-bad' }) })] : null,
        s.under_replicated.length ? [h('h3', { class: 'card-sub' }, `Under-replicated (fewer in sync than replicas): ${s.under_replicated.length}`),
          table(cols, s.under_replicated, { rowAttrs: () => ({ class: 'row-warn', 'data-under-replicated': '' }) })] : null);
    }
  }, 3000);
}
