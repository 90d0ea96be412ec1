/** An injected clock and an in-memory Lease store, for driving the elector exhaustively. */
import type { Clock, Instant } from '../../src/core/time.ts';
import { ApiError } from '../../src/kube/errors.ts';
import type { LeaseLock } from '../../src/lease/lock.ts';
import type { LeaseSnapshot, LeaseSpec } from '../../src/lease/record.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  mono = 1_000;
  wall = Date.UTC(2026, 10, 21, 10, 0, 0);
  #timers: Timer[] = [];
  #seq = 0;

  now(): Instant {
    return { mono: this.mono, wall: this.wall };
  }

  after(ms: number, fn: () => void): () => void {
    const t: Timer = { at: this.mono + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(t);
    return () => {
      this.#timers = this.#timers.filter((x) => x !== t);
    };
  }

  /** Runs every timer due within `ms`, in order, letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.mono + ms;
    await settle();
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.wall += next.at - this.mono;
      this.mono = next.at;
      next.fn();
      await settle();
    }
    this.wall += target - this.mono;
    this.mono = target;
    await settle();
  }

  /** A suspended host: the wall clock moves on, the monotonic clock does not. */
  suspend(ms: number): void {
    this.wall += ms;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

type Op = 'get' | 'create' | 'update';

/** One Lease in memory with the API server's compare-and-set rules. Requests can be made to
 *  hang (a blackholed network), fail, or lose their reply after the write was applied. */
export class MemoryStore {
  obj: { uid: string; rv: number; spec: LeaseSpec; labels?: Record<string, string>; annotations?: Record<string, string> } | null = null;
  #rv = 1;
  #uid = 0;
  readonly writes: Array<{ by: string; spec: LeaseSpec; at: number }> = [];
  readonly clock: FakeClock;
  readonly #watchers = new Set<(s: LeaseSnapshot | null) => void>();
  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  subscribe(fn: (s: LeaseSnapshot | null) => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  get version(): number {
    return this.#rv;
  }

  #notify(): void {
    const snap = this.snapshot();
    for (const w of [...this.#watchers]) w(snap);
  }

  lockFor(who: string): MemoryLock {
    return new MemoryLock(this, who);
  }

  snapshot(): LeaseSnapshot | null {
    if (!this.obj) return null;
    const o = this.obj;
    const object = { metadata: { uid: o.uid, resourceVersion: String(o.rv), labels: o.labels, annotations: o.annotations }, spec: structuredClone(o.spec) };
    return { uid: o.uid, resourceVersion: String(o.rv), spec: structuredClone(o.spec), object };
  }

  /** A write by someone else (an admin, another controller). */
  overwrite(spec: Partial<LeaseSpec>): void {
    if (!this.obj) throw new Error('no lease');
    this.obj = { ...this.obj, rv: ++this.#rv, spec: { ...this.obj.spec, ...spec } };
    this.#notify();
  }

  label(k: string, v: string): void {
    if (!this.obj) throw new Error('no lease');
    this.obj = { ...this.obj, rv: ++this.#rv, labels: { ...this.obj.labels, [k]: v } };
    this.#notify();
  }

  annotate(k: string, v: string): void {
    if (!this.obj) throw new Error('no lease');
    this.obj = { ...this.obj, rv: ++this.#rv, annotations: { ...this.obj.annotations, [k]: v } };
    this.#notify();
  }

  delete(): void {
    this.obj = null;
    this.#rv++;
    this.#notify();
  }

  create(spec: LeaseSpec, by: string): LeaseSnapshot {
    if (this.obj) throw new ApiError('conflict', 'already exists', 409);
    this.obj = { uid: `uid-${++this.#uid}`, rv: ++this.#rv, spec: structuredClone(spec) };
    this.writes.push({ by, spec, at: this.clock.mono });
    this.#notify();
    return this.snapshot() as LeaseSnapshot;
  }

  update(prev: LeaseSnapshot, spec: LeaseSpec, by: string): LeaseSnapshot {
    if (!this.obj) throw new ApiError('not-found', 'not found', 404);
    if (this.obj.uid !== prev.uid || String(this.obj.rv) !== prev.resourceVersion) throw new ApiError('conflict', 'conflict', 409);
    // As a PUT: the annotations sent replace those stored.
    const sent = (prev.object['metadata'] as { annotations?: Record<string, string> } | undefined)?.annotations;
    this.obj = { ...this.obj, rv: ++this.#rv, spec: structuredClone(spec), ...(sent && { annotations: { ...sent } }) };
    this.writes.push({ by, spec, at: this.clock.mono });
    this.#notify();
    return this.snapshot() as LeaseSnapshot;
  }
}

export class MemoryLock implements LeaseLock {
  readonly description = 'default/test';
  /** 'hang': no answer until the deadline; 'drop-reply': the write lands, the answer is lost. */
  mode: 'ok' | 'hang' | 'drop-reply' | 'fail' = 'ok';
  latencyMs = 0;
  readonly calls: Op[] = [];
  readonly store: MemoryStore;
  readonly who: string;
  constructor(store: MemoryStore, who: string) {
    this.store = store;
    this.who = who;
  }

  /** 'off': this lock has no watch; 'stall': the watch stays open but delivers nothing;
   *  'break': it fails at once. */
  watchMode: 'ok' | 'off' | 'stall' | 'break' = 'ok';
  watches = 0;

  get watch(): LeaseLock['watch'] {
    if (this.watchMode === 'off') return undefined;
    return (fromVersion, signal, onChange) => {
      this.watches++;
      if (this.watchMode === 'break') return Promise.reject(new ApiError('unavailable', 'watch: connection reset'));
      return new Promise<void>((resolve) => {
        const stall = this.watchMode === 'stall';
        const unsubscribe = this.store.subscribe((snap) => {
          if (!stall && this.mode !== 'hang') onChange(snap);
        });
        if (!stall && this.store.version > Number(fromVersion)) onChange(this.store.snapshot());
        signal.addEventListener(
          'abort',
          () => {
            unsubscribe();
            resolve();
          },
          { once: true },
        );
      });
    };
  }

  get(signal: AbortSignal): Promise<LeaseSnapshot | null> {
    return this.#do('get', signal, () => this.store.snapshot());
  }
  create(spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot> {
    return this.#do('create', signal, () => this.store.create(spec, this.who));
  }
  update(prev: LeaseSnapshot, spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot> {
    return this.#do('update', signal, () => this.store.update(prev, spec, this.who));
  }

  #do<T>(op: Op, signal: AbortSignal, apply: () => T): Promise<T> {
    this.calls.push(op);
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(new ApiError('unavailable', `${op}: deadline`));
      if (signal.aborted) return abort();
      signal.addEventListener('abort', abort, { once: true });
      if (this.mode === 'hang') return;
      if (this.mode === 'fail') return reject(new ApiError('unavailable', `${op}: connection refused`));
      let result: T;
      try {
        result = apply();
      } catch (e) {
        return reject(e);
      }
      if (this.mode === 'drop-reply' && op !== 'get') return;
      if (this.latencyMs > 0) this.store.clock.after(this.latencyMs, () => resolve(result));
      else resolve(result);
    });
  }
}
