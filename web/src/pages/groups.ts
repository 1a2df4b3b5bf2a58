import { api, ApiError, Cluster, GroupSummary, Stats, enc } from '../api';
import { TimeChart } from '../charts';
import { Page } from '../page';
import { h, clear, card, table, num, spinner, errorBox, empty, link, badge, stateTone } from '../ui';

export const unsupported = 'This Kafka cluster does not support consumer groups: its brokers do not advertise the group APIs (ListGroups, DescribeGroups).';

export function groups(page: Page): void {
  page.title('Consumer groups', { sub: 'Groups, their members and how far behind the end of their topics they are.' });
  const list = h('div', null, spinner());
  const chartHost = h('div', { class: 'chart-host' });
  const chartCard = card('Lag over time (records behind)', chartHost);
  chartCard.hidden = true;
  page.body.append(card(null, list), chartCard);
  const chart = new TimeChart(chartHost, { height: 220, zero: true, emptyText: 'Collecting lag samples…' });
  page.onCleanup(() => chart.destroy());

  page.poll(async () => {
    try {
      // Ask the cluster first, so that a cluster without groups is a
      // state to show, not a failed request.
      if (!(await api<Cluster>('/api/v1/cluster')).groups_supported) {
        if (page.alive) clear(list, empty('Consumer groups are not available', unsupported));
        return;
      }
      const r = await api<{ groups: GroupSummary[] }>('/api/v1/groups');
      if (!page.alive) return;
      clear(list, r.groups.length === 0
        ? empty('No consumer groups', ['A consumer that joins with a group id shows up here, e.g. ', h('code', null, 'strom consume streaming-data --group dashboard'), '.'])
        : table([
          { title: 'Group', cell: (g) => link('#/groups/' + enc(g.group), g.group, 'strong') },
          { title: 'State', cell: (g) => badge(g.state || 'Unknown', stateTone(g.state)) },
          { title: 'Members', num: true, cell: (g) => num(g.members) },
          { title: 'Topics', cell: (g) => g.topics.join(', ') || '–' },
          { title: 'Lag', num: true, cell: (g) => (g.lag === null ? h('span', { class: 'muted', title: g.error ?? '' }, 'unknown') : num(g.lag)) },
        ], r.groups, { rowAttrs: (g) => ({ 'data-group': g.group }) }));
      if (r.groups.length > 0) {
        const s = await api<Stats>('/api/v1/stats');
        const names = Object.keys(s.groups);
        chartCard.hidden = names.length === 0 || s.t.length < 2;
        if (!chartCard.hidden) chart.set(names, s.t.map((t) => t / 1000), names.map((n) => s.groups[n]));
      }
    } catch (e) {
      if (!page.alive) return;
      if (e instanceof ApiError && e.code === 'groups_unsupported') {
        clear(list, empty('Consumer groups are not available', e.message));
      } else {
        clear(list, errorBox('Could not list consumer groups', e));
      }
    }
  }, 4000);
}
