/**
 * Exponential backoff with full jitter, as docs/clients.md says: the delay before
 * attempt n (from 0) is a random point in [0, min(30 s, 500 ms × 2^n)], raised to
 * at least `Retry-After`; a connection that stayed up for a minute resets n.
 */

/** Randomness, time and sleeping, injectable so that backoff can be tested. */
export interface Clock {
  /** A number in [0, 1), as `Math.random`. */
  random(): number;
  /** Milliseconds, as `Date.now`. */
  now(): number;
  /** Resolves after `ms` milliseconds, or early (without error) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The clock of the platform. */
export const systemClock: Clock = {
  random: () => Math.random(),
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    }),
};

/** The backoff numbers of the spec. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;
export const HEALTHY_RESET_MS = 60_000;

/** Options that replace parts of the clock (for tests). */
export type BackoffOptions = Partial<Clock>;

/** The delay before attempt `attempt` (from 0), with `retryAfter` in seconds. */
export function backoffDelay(attempt: number, random: () => number, retryAfter?: number | null): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
  const jittered = random() * ceiling;
  return retryAfter != null && retryAfter > 0 ? Math.max(jittered, retryAfter * 1000) : jittered;
}

/** Counts attempts and sleeps between them. */
export class Backoff {
  private attempt = 0;
  private upSince: number | null = null;

  constructor(private readonly clock: Clock) {}

  /** A connection (or request) succeeded: remember when, for the healthy-minute reset. */
  connected(): void {
    this.upSince = this.clock.now();
  }

  /** Something succeeded that needs no minute of health (a pull): reset at once. */
  reset(): void {
    this.attempt = 0;
    this.upSince = null;
  }

  /** The connection dropped or an attempt failed: the delay before the next attempt. */
  next(retryAfter?: number | null): number {
    if (this.upSince !== null && this.clock.now() - this.upSince >= HEALTHY_RESET_MS) this.attempt = 0;
    this.upSince = null;
    const delay = backoffDelay(this.attempt, () => this.clock.random(), retryAfter);
    this.attempt += 1;
    return delay;
  }

  /** Sleeps the delay of {@link next}; resolves early when `signal` aborts. */
  async wait(retryAfter: number | null | undefined, signal?: AbortSignal): Promise<number> {
    const delay = this.next(retryAfter);
    await this.clock.sleep(delay, signal);
    return delay;
  }
}

/** The system clock with some parts replaced. */
export function makeClock(options?: BackoffOptions): Clock {
  return { ...systemClock, ...options };
}
