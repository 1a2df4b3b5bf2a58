import { api, Cluster, Stats, Topic, enc } from '../api';
import { TimeChart } from '../charts';
import { Page } from '../page';
import { h, clear, card, table, num, rate, bytes, spinner, errorBox, empty, link, badge, stat } from '../ui';

export function overview(page: Page): void {
  page.title('Overview', { sub: 'Brokers, topics and throughput of the cluster, refreshed every few seconds.' });
  const stats = h('div', { class: 'stats' });
  const chartHost = h('div', { class: 'chart-host' });
  const chartNote = h('p', { class: 'muted small' });
  const brokers = h('div', null, spinner());
  const topicList = h('div', null, spinner());
  page.body.append(
    stats,
    card('Throughput (records per second)', chartHost, chartNote),
    h('div', { class: 'grid-2' }, card('Brokers', brokers), card(h('span', null, 'Busiest topics ', link('#/topics', 'all topics →', 'card-link')), topicList)));
  clear(stats, spinner());
  const chart = new TimeChart(chartHost, { height: 220, zero: true, fill: true, emptyText: 'Collecting throughput samples…', fmt: (v) => (v < 10 ? v.toFixed(1) : String(Math.round(v))) });
  page.onCleanup(() => chart.destroy());

  page.poll(async () => {
    let c: Cluster;
    try {
      c = await api<Cluster>('/api/v1/cluster');
    } catch (e) {
      clear(stats, errorBox('Could not load the cluster', e));
      return;
    }
    if (!page.alive) return;
    clear(stats,
      stat('Brokers', num(c.brokers.length)),
      stat('Topics', num(c.topics)),
      stat('Partitions', num(c.partitions)),
      stat('Records', num(c.records)),
      stat('Records/s now', rate(c.records_per_sec), 'stat-accent'));
    clear(brokers, table([
      { title: 'ID', cell: (b) => [String(b.id), b.id === c.controller ? [' ', badge('controller', 'ok')] : null] },
      { title: 'Host', cell: (b) => `${b.host}:${b.port}` },
      { title: 'Rack', cell: (b) => b.rack ?? '–' },
    ], c.brokers));

    const [ts, st] = await Promise.allSettled([api<{ topics: Topic[] }>('/api/v1/topics'), api<Stats>('/api/v1/stats')]);
    if (!page.alive) return;
    if (ts.status === 'fulfilled') {
      const rows = ts.value.topics.slice().sort((a, b) => (b.records_per_sec ?? 0) - (a.records_per_sec ?? 0) || a.name.localeCompare(b.name)).slice(0, 8);
      clear(topicList, rows.length === 0
        ? empty('No topics yet', ['Create one on the ', link('#/topics', 'Topics'), ' page, or run ', h('code', null, 'strom demo'), '.'])
        : table([
          { title: 'Topic', cell: (t) => link('#/topics/' + enc(t.name), t.name) },
          { title: 'Records', num: true, cell: (t) => num(t.records) },
          { title: 'Size', num: true, cell: (t) => bytes(t.size_bytes) },
          { title: 'Rate', num: true, cell: (t) => rate(t.records_per_sec) },
        ], rows));
    } else {
      clear(topicList, errorBox('Could not list topics', ts.reason));
    }
    if (st.status === 'fulfilled') {
      const s = st.value;
      const names = Object.keys(s.topics).slice(0, 5);
      const xs = s.t.map((t) => t / 1000);
      // One topic: its line is the total; several: the total and each.
      if (names.length <= 1) chart.set([names[0] ?? 'all topics'], xs, [s.records_per_sec]);
      else chart.set(['all topics', ...names], xs, [s.records_per_sec, ...names.map((n) => s.topics[n])]);
      chartNote.textContent = s.t.length < 2
        ? `Collecting samples (one every ${s.interval_ms / 1000} s); the chart fills in as they arrive.`
        : `Last ${Math.round((s.t[s.t.length - 1] - s.t[0]) / 60000) || 1} min, sampled every ${s.interval_ms / 1000} s in the console (no Prometheus needed).`;
    }
  }, 3000);
}
