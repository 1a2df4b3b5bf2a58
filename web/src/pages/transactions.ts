// The transactions page: the transactional ids the coordinators know
// (ListTransactions + DescribeTransactions), open ones by default.
import { api, ApiError, Transaction, Transactions, enc } from '../api';
import { Page } from '../page';
import { h, clear, card, table, spinner, errorBox, empty, link, badge, select, time, duration } from '../ui';

function txnTone(state: string): string {
  switch (state) {
    case 'Ongoing': return 'warn';
    case 'PrepareCommit': case 'PrepareAbort': case 'PrepareEpochFence': return 'warn';
    case 'CompleteCommit': return 'ok';
    case 'CompleteAbort': return 'bad';
    default: return 'muted';
  }
}

export function transactions(page: Page): void {
  page.title('Transactions', { sub: 'Transactional producers and their open transactions, from the transaction coordinators, refreshed every few seconds.' });
  const filter = select([['open', 'Open (ongoing or finishing)'], ['all', 'All transactional ids']], 'open', { class: 'input', 'aria-label': 'Which transactions' });
  const list = h('div', { id: 'transactions' }, spinner());
  page.body.append(card(null, h('div', { class: 'toolbar' }, filter), list));
  const refresh = page.poll(async () => {
    let t: Transactions;
    try {
      t = await api<Transactions>('/api/v1/transactions?state=' + enc(filter.value));
    } catch (e) {
      if (!page.alive) return;
      clear(list, e instanceof ApiError && e.code === 'transactions_unsupported'
        ? empty('Transactions are not available', (e as Error).message)
        : errorBox('Could not list the transactions', e));
      return;
    }
    if (!page.alive) return;
    const warn = t.errors?.length ? h('p', { class: 'alert alert-error', role: 'alert' }, 'Some brokers did not answer: ' + t.errors.join('; ')) : null;
    clear(list, warn, t.transactions.length === 0
      ? empty(filter.value === 'open' ? 'No open transactions' : 'No transactional ids', 'Transactional producers show here while a transaction is open.')
      : table([
        { title: 'Transactional id', cell: (x: Transaction) => h('code', null, x.transactional_id) },
        { title: 'State', cell: (x: Transaction) => badge(x.state, txnTone(x.state)) },
        { title: 'Producer id', num: true, cell: (x: Transaction) => String(x.producer_id) },
        { title: 'Epoch', num: true, cell: (x: Transaction) => String(x.producer_epoch) },
        { title: 'Started', cell: (x: Transaction) => (x.start_ms === null ? '–' : time(x.start_ms)) },
        { title: 'Running for', num: true, cell: (x: Transaction) => (x.duration_ms === null ? '–' : duration(x.duration_ms)) },
        { title: 'Timeout', num: true, cell: (x: Transaction) => (x.timeout_ms ? duration(x.timeout_ms) : '–') },
        { title: 'Partitions', cell: (x: Transaction) => (x.partitions.length === 0 ? '–'
          : x.partitions.map((p, i) => [i ? ', ' : '', link(`#/topics/${enc(p.topic)}/partitions`, p.topic), ` [${p.partitions.join(', ')}]`])) },
        { title: 'Coordinator', num: true, cell: (x: Transaction) => String(x.coordinator) },
        { title: '', cell: (x: Transaction) => (x.error ? badge(x.error, 'bad') : null) },
      ], t.transactions, { rowAttrs: (x) => ({ 'data-txn': x.transactional_id }) }));
  }, 3000);
  filter.addEventListener('change', () => {
    clear(list, spinner());
    refresh();
  });
}
