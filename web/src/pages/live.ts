import { KRecord, enc } from '../api';
import { TimeChart } from '../charts';
import { numericFields, pick, preview } from '../format';
import { Page } from '../page';
import { h, clear, card, field, select, time, num } from '../ui';

// The live tail and chart: a WebSocket stream of the topic, a chart of a
// numeric JSON field (one line per key) or of the record rate, and the
// newest records.
const windowSecs = 120;
const maxPoints = 3000;
const maxKeys = 8;
const tailSize = 50;

interface Point { t: number; key: string; v: number }

export function live(page: Page, panel: HTMLElement, name: string): void {
  const from = select([['recent', 'Last 2 minutes, then new'], ['latest', 'New records only'], ['earliest', 'From the beginning']], 'recent', { class: 'input', name: 'from' });
  const fieldSel = select([['', 'Record rate (records/s)']], '', { class: 'input', name: 'field', id: 'chart-field' });
  const split = h('input', { type: 'checkbox', name: 'split', checked: true });
  const where = h('input', { class: 'input mono', name: 'where', placeholder: 'filter, e.g. sensor == s3', autocomplete: 'off' });
  const apply = h('button', { class: 'btn', type: 'submit' }, 'Apply');
  const pause = h('button', { class: 'btn', type: 'button', id: 'live-pause' }, 'Pause');
  const pill = h('span', { class: 'pill', id: 'live-status' }, 'Connecting…');
  const counters = h('span', { class: 'muted small', id: 'live-counters' });
  const err = h('div');
  const chartHost = h('div', { class: 'chart-host', id: 'live-chart' });
  const note = h('p', { class: 'muted small' });
  const tail = h('div', { class: 'tail', id: 'live-tail' });
  const controls = h('form', { class: 'filters' },
    h('div', { class: 'form-row' },
      field('Start with', from),
      field('Chart', fieldSel),
      h('label', { class: 'field check' }, split, h('span', null, 'One line per key')),
      field('Filter (server side)', where),
      h('div', { class: 'field align-end' }, apply)));
  clear(panel,
    card(null, controls),
    card(h('span', { class: 'live-head' }, h('span', null, 'Live chart'), pill, counters, pause), err, chartHost, note),
    card('Newest records', tail));

  const chart = new TimeChart(chartHost, { height: 280, points: true, fill: true, emptyText: 'Waiting for records… (produce one, or run strom demo)' });
  page.onCleanup(() => chart.destroy());

  let ws: WebSocket | null = null;
  let paused = false;
  let received = 0;
  let dropped = 0;
  let userPicked = false;
  const fields = new Set<string>();
  let points: Point[] = [];
  // unsorted: points holds a point older than one before it; uPlot needs
  // x ascending, so draw sorts first (a stable sort: equal times keep
  // their arrival order).
  let unsorted = false;
  const perSecond = new Map<number, number>();
  let latestT = 0;
  const newest: KRecord[] = [];
  let dirty = false;
  let retry = 0;

  const setStatus = (text: string, tone: string) => {
    pill.textContent = text;
    pill.className = 'pill pill-' + tone;
  };

  const connect = (mode: string) => {
    ws?.close();
    const q = new URLSearchParams();
    q.set('from', mode === 'recent' ? '@' + (Date.now() - windowSecs * 1000) : mode);
    // The last two minutes only as much as the stream's queue holds: more
    // would be dropped, oldest first, which takes whole partitions'
    // history (the server fetches one partition after another). "From the
    // beginning" means it, and takes what the queue keeps.
    if (mode === 'recent') q.set('max_backlog', 'queue');
    if (where.value.trim()) q.set('where', where.value.trim());
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${proto}://${location.host}/api/v1/topics/${enc(name)}/stream?${q}`);
    ws = sock;
    setStatus('Connecting…', 'wait');
    sock.onmessage = (ev) => {
      const m = JSON.parse(ev.data as string);
      if (m.type === 'ready') {
        setStatus('Live', 'ok');
        clear(err);
        retry = 0;
      } else if (m.type === 'dropped') {
        dropped += m.dropped;
      } else if (m.type === 'error') {
        clear(err, h('div', { class: 'alert alert-error' }, m.error));
      } else {
        onRecord(m as KRecord);
      }
    };
    sock.onclose = (ev) => {
      if (ws !== sock || !page.alive) return;
      ws = null;
      if (paused) return;
      if (ev.code === 1008 && ev.reason) {
        setStatus('Stopped', 'bad');
        clear(err, h('div', { class: 'alert alert-error' }, ev.reason));
        return;
      }
      retry++;
      const wait = Math.min(10, 2 ** retry);
      setStatus(`Disconnected; retrying in ${wait} s`, 'bad');
      window.setTimeout(() => {
        if (page.alive && !paused && ws === null) connect('latest');
      }, wait * 1000);
    };
  };

  const onRecord = (r: KRecord) => {
    received++;
    const t = r.timestamp / 1000;
    latestT = Math.max(latestT, t);
    const sec = Math.floor(t);
    perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1);
    if (r.value_encoding === 'json' && r.value && typeof r.value === 'object') {
      for (const f of numericFields(r.value)) {
        if (!fields.has(f)) {
          fields.add(f);
          fieldSel.append(h('option', { value: f }, f));
          if (!userPicked && (fieldSel.value === '' && (f === 'value' || fields.size === 1))) fieldSel.value = f;
        }
      }
      for (const f of [fieldSel.value]) {
        if (!f) continue;
        const v = pick(r.value, f);
        if (v === null) continue;
        // Partitions arrive one after another, each in time order but not
        // with each other: note when a point is older than the last one.
        if (points.length > 0 && t < points[points.length - 1].t) unsorted = true;
        points.push({ t, key: r.key === null || r.key === undefined ? '(no key)' : String(r.key), v });
      }
    }
    newest.unshift(r);
    if (newest.length > tailSize) newest.length = tailSize;
    dirty = true;
  };

  const draw = () => {
    if (!dirty || !page.alive) return;
    dirty = false;
    const lo = latestT - windowSecs;
    if (unsorted) {
      points.sort((a, b) => a.t - b.t);
      unsorted = false;
    }
    points = points.filter((p) => p.t >= lo).slice(-maxPoints);
    for (const s of perSecond.keys()) if (s < lo - 1) perSecond.delete(s);
    counters.textContent = `${num(received)} received` + (dropped ? ` · ${num(dropped)} dropped (browser too slow)` : '');
    const f = fieldSel.value;
    chart.setZero(!f);
    if (!f) {
      const xs: number[] = [];
      const ys: number[] = [];
      const end = Math.floor(latestT);
      for (let s = end - windowSecs; latestT > 0 && s < end; s++) {
        xs.push(s);
        ys.push(perSecond.get(s) ?? 0);
      }
      chart.set(['records/s'], xs, [ys]);
      note.textContent = 'Records per second, counted in the browser from the stream. Pick a numeric field to chart its values.';
    } else {
      const keys: string[] = [];
      if (split.checked) {
        for (const p of points) if (!keys.includes(p.key) && keys.length < maxKeys) keys.push(p.key);
        keys.sort();
      }
      const labels = split.checked && keys.length > 0 ? keys : [f];
      const xs = points.map((p) => p.t);
      const ys = labels.map((label) => points.map((p) => (!split.checked || p.key === label ? p.v : null)));
      chart.set(labels, xs, ys);
      note.textContent = `“${f}” of each record over the last ${windowSecs / 60} minutes` + (split.checked ? ', one line per key.' : '.');
    }
    clear(tail, newest.length === 0
      ? h('p', { class: 'muted' }, paused ? 'Paused.' : 'Waiting for records… produce one on the Produce tab, or run strom demo.')
      : h('ul', { class: 'tail-list' }, newest.map((r) => h('li', null,
        h('span', { class: 'tail-time' }, time(r.timestamp).slice(11)),
        h('span', { class: 'tail-pos' }, `${r.partition}/${r.offset}`),
        h('span', { class: 'tail-key mono' }, preview(r.key, r.key_encoding, 24)),
        h('span', { class: 'tail-val mono' }, preview(r.value, r.value_encoding, 160))))));
  };
  const timer = window.setInterval(draw, 250);
  page.onCleanup(() => {
    window.clearInterval(timer);
    const s = ws;
    ws = null;
    s?.close();
  });

  fieldSel.addEventListener('change', () => {
    userPicked = true;
    points = [];
    dirty = true;
  });
  split.addEventListener('change', () => {
    dirty = true;
  });
  controls.addEventListener('submit', (ev) => {
    ev.preventDefault();
    points = [];
    perSecond.clear();
    newest.length = 0;
    latestT = 0;
    paused = false;
    pause.textContent = 'Pause';
    connect(from.value);
    dirty = true;
  });
  from.addEventListener('change', () => controls.requestSubmit());
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (paused) {
      const s = ws;
      ws = null;
      s?.close();
      setStatus('Paused', 'muted');
    } else {
      connect('latest');
    }
  });
  dirty = true;
  connect(from.value);
}
