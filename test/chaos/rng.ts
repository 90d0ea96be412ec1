/**
 * A seeded random stream for the chaos run. Each draw hashes (seed, stream, counter), so
 * the sequence depends only on the seed and the number of draws — never on timing — and
 * a run is reproducible with --seed.
 */
import { createHash } from 'node:crypto';

export class Rng {
  readonly #key: string;
  #n = 0;

  constructor(seed: number | string, stream: string) {
    this.#key = `${seed}/${stream}/`;
  }

  /** Uniform in [0, 1). */
  next(): number {
    const h = createHash('sha256')
      .update(this.#key + this.#n++)
      .digest();
    // 48 bits are plenty and stay exact in a double.
    return h.readUIntBE(0, 6) / 2 ** 48;
  }

  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  shuffle<T>(items: readonly T[]): T[] {
    const a = [...items];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}
