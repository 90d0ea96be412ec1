/**
 * The Lease behind a tiny interface, as client-go's resourcelock does, so the election can
 * run against the API server (kube-lease-lock.ts) or an in-memory store in unit tests.
 *
 * Every write is a compare-and-set on the resourceVersion (and uid) of the snapshot it
 * replaces: a conflict means someone else wrote first.
 */
import type { LeaseSnapshot, LeaseSpec } from './record.ts';

export interface LeaseLock {
  /** "namespace/name", for logs and the child's environment. */
  readonly description: string;
  /** The current Lease, or null when there is none. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | null>;
  /** Creates the Lease; throws ApiError 'conflict' if it exists already. */
  create(spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Replaces the spec of `prev`; throws ApiError 'conflict' if the Lease is no longer at
   *  prev's version (or was recreated), 'not-found' if it was deleted. */
  update(prev: LeaseSnapshot, spec: LeaseSpec, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Optional: streams every change after `fromVersion` to onChange (null: deleted) until the
   *  stream ends (resolve) or fails (reject; ApiError 'gone' when the version is too old). */
  watch?(fromVersion: string, signal: AbortSignal, onChange: (s: LeaseSnapshot | null) => void): Promise<void>;
}
