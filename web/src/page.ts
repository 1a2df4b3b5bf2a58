// The life of a page: what it owns (timers, sockets, charts) is released
// when the route changes.
import { h, clear } from './ui';

export class Page {
  private cleanups: (() => void)[] = [];
  private dead = false;
  readonly head: HTMLElement;
  readonly body: HTMLElement;

  constructor(readonly root: HTMLElement) {
    this.head = h('header', { class: 'page-head' });
    this.body = h('div', { class: 'page-body' });
    clear(root, this.head, this.body);
  }

  get alive(): boolean {
    return !this.dead;
  }

  onCleanup(fn: () => void): void {
    if (this.dead) fn();
    else this.cleanups.push(fn);
  }

  // title sets the page heading, with optional crumbs before it and
  // actions after it.
  title(text: string, opts: { crumbs?: [string, string][]; actions?: Node[]; sub?: Node | string } = {}): void {
    document.title = text + ' · Strom';
    clear(this.head,
      opts.crumbs?.length ? h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        opts.crumbs.map(([href, t]) => [h('a', { href }, t), h('span', { class: 'sep' }, '/')])) : null,
      h('div', { class: 'page-title-row' },
        h('h1', { class: 'page-title' }, text),
        opts.actions?.length ? h('div', { class: 'page-actions' }, opts.actions) : null),
      opts.sub ? h('div', { class: 'page-sub' }, opts.sub) : null);
  }

  // poll runs fn now and then every ms while the page lives; while the tab
  // is hidden it waits. A run never overlaps the previous one.
  poll(fn: () => Promise<void>, ms: number): () => void {
    let timer = 0;
    const run = async () => {
      if (this.dead) return;
      if (document.hidden) {
        timer = window.setTimeout(run, ms);
        return;
      }
      try {
        await fn();
      } finally {
        if (!this.dead) timer = window.setTimeout(run, ms);
      }
    };
    run();
    const stop = () => window.clearTimeout(timer);
    this.onCleanup(stop);
    return () => {
      window.clearTimeout(timer);
      run();
    };
  }

  dispose(): void {
    this.dead = true;
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (e) {
        console.warn('cleanup failed', e);
      }
    }
  }
}
