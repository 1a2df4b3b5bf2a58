// Time series charts on uPlot. A chart keeps its series labels; when they
// change (a new key shows up) it is rebuilt, since uPlot's series are
// fixed at creation.
import uPlot from 'uplot';
import { h } from './ui';

export const palette = ['#0f766e', '#6366f1', '#ea580c', '#0284c7', '#c026d3', '#65a30d', '#dc2626', '#ca8a04', '#475569'];

export interface ChartOpts {
  height?: number;
  // Formats a y value for the axis and the legend.
  fmt?: (v: number) => string;
  // Draws filled areas (for a single series).
  fill?: boolean;
  // Shows points as well as lines.
  points?: boolean;
  // Shown while there are fewer than two points in time.
  emptyText?: string;
  // Starts the y axis at zero (rates, lag), rather than fitting the data.
  zero?: boolean;
}

export class TimeChart {
  private plot: uPlot | null = null;
  private labels: string[] = [];
  private ro: ResizeObserver;
  readonly el: HTMLElement;
  private data: uPlot.AlignedData = [[]];

  constructor(host: HTMLElement, private opts: ChartOpts = {}) {
    this.el = h('div', { class: 'chart', 'data-points': '0' });
    host.append(this.el);
    this.ro = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.height() });
    });
    this.ro.observe(this.el);
  }

  private width(): number {
    return Math.max(200, this.el.clientWidth || this.el.parentElement?.clientWidth || 600);
  }

  private height(): number {
    return this.opts.height ?? 240;
  }

  // setZero switches between a zero-based y axis and one that fits.
  setZero(zero: boolean): void {
    if (!!this.opts.zero === zero) return;
    this.opts = { ...this.opts, zero };
    this.labels = []; // rebuild on the next set
  }

  // set replaces the data: xs in unix seconds, one array per label.
  set(labels: string[], xs: number[], ys: (number | null)[][]): void {
    this.data = [xs, ...ys] as uPlot.AlignedData;
    let points = 0;
    for (const col of ys) for (const v of col) if (v !== null && v !== undefined) points++;
    this.el.dataset.points = String(points);
    this.el.dataset.lastX = xs.length ? String(xs[xs.length - 1]) : '';
    // For tests: whether x ascends (uPlot assumes it), and the points
    // given per series; drawn() adds what uPlot drew.
    let sorted = true;
    for (let i = 1; i < xs.length && sorted; i++) sorted = xs[i - 1] <= xs[i];
    this.el.dataset.sorted = sorted ? '1' : '0';
    const given: Record<string, number> = {};
    labels.forEach((l, i) => { given[l] = ys[i].filter((v) => v !== null && v !== undefined).length; });
    this.el.dataset.given = JSON.stringify(given);
    // Fewer than two x values make no line, and uPlot would pick a
    // meaningless time range: show a placeholder instead.
    const waiting = xs.length < 2;
    this.el.classList.toggle('chart-waiting', waiting);
    if (waiting) {
      this.plot?.destroy();
      this.plot = null;
      this.labels = [];
      this.el.replaceChildren(h('div', { class: 'chart-empty' }, this.opts.emptyText ?? 'Waiting for data…'));
      return;
    }
    if (!this.plot) this.el.replaceChildren();
    if (!this.plot || labels.length !== this.labels.length || labels.some((l, i) => l !== this.labels[i])) {
      this.labels = labels.slice();
      this.build();
      return;
    }
    this.plot.setData(this.data);
  }

  private build(): void {
    this.plot?.destroy();
    const fmt = this.opts.fmt ?? ((v: number) => String(Math.round(v * 100) / 100));
    const single = this.labels.length === 1;
    const series: uPlot.Series[] = [{}];
    this.labels.forEach((label, i) => {
      const color = palette[i % palette.length];
      series.push({
        label,
        stroke: color,
        width: 2,
        fill: single && this.opts.fill ? color + '22' : undefined,
        spanGaps: true,
        points: { show: this.opts.points ?? false, size: 4 },
        value: (_u, v) => (v === null || v === undefined ? '–' : fmt(v)),
      });
    });
    this.plot = new uPlot({
      width: this.width(),
      height: this.height(),
      series,
      legend: { show: true, live: true },
      hooks: { draw: [(u) => this.drawn(u)] },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true },
        y: this.opts.zero ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } : {},
      },
      axes: [
        // space: at least this many pixels between x labels, so that
        // date-and-time labels do not run into each other.
        { stroke: '#64748b', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#e2e8f0' }, space: 90 },
        { stroke: '#64748b', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#e2e8f0' }, size: 56 },
      ],
    }, this.data, this.el);
  }

  // drawn records, for tests, the points of each series that uPlot drew:
  // inside the index window it drew and the x scale's range.
  private drawn(u: uPlot): void {
    const xs = u.data[0];
    const lo = u.scales.x.min ?? -Infinity;
    const hi = u.scales.x.max ?? Infinity;
    const out: Record<string, number> = {};
    u.series.forEach((s, i) => {
      if (i === 0) return;
      const col = u.data[i];
      const [i0, i1] = s.idxs ?? [0, xs.length - 1];
      let n = 0;
      for (let j = i0; j <= i1; j++) if (col[j] !== null && col[j] !== undefined && xs[j] >= lo && xs[j] <= hi) n++;
      out[String(s.label)] = n;
    });
    this.el.dataset.drawn = JSON.stringify(out);
  }

  destroy(): void {
    this.ro.disconnect();
    this.plot?.destroy();
    this.plot = null;
    this.el.remove();
  }
}
