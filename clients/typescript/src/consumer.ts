/**
 * `consume`: a worker over a pull subscription. Pulls with the finished work's
 * acks piggy-backed, runs the handler at most `concurrency` at a time with at
 * most `maxInFlight` leased, nacks what throws, extends slow leases every half
 * deadline, retries failed pulls with backoff, and drains on `stop()`.
 */
import { Backoff, type Clock } from "./backoff.js";
import { parseDuration, toDuration } from "./duration.js";
import { HeraldError, MALFORMED, isRetryableStatus, malformed } from "./errors.js";
import { toEnvelope, type Envelope } from "./frames.js";
import type { SubscriptionsApi } from "./resources.js";

/** A pulled message as the handler gets it. */
export interface PulledMessage {
  ackId: string;
  attempt: number;
  message: Envelope;
}

/** Options of `Herald.consume`. */
export interface ConsumeOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /** Messages leased at once (default `concurrency`). */
  maxInFlight?: number;
  /** How long a pull waits for messages: milliseconds or a duration (default 20 s). */
  wait?: number | string;
  /** Called with the error that ends the consumer. */
  onError?: (error: unknown) => void;
}

/** A running consumer. */
export interface Consumer {
  /** Pulls nothing more, waits for running handlers, settles their messages. */
  stop(): Promise<void>;
  /** Settles once the consumer has stopped: rejects with the error that ended it. */
  readonly done: Promise<void>;
}

/** A handler of pulled messages: resolving acks, throwing nacks (with `Retry`'s delay). */
export type Handler = (message: PulledMessage) => unknown;

function delayOf(error: unknown): number | string | undefined {
  if (typeof error !== "object" || error === null || !("delay" in error)) return undefined;
  const delay = (error).delay;
  return typeof delay === "number" || typeof delay === "string" ? delay : undefined;
}

/** The state of one consumer; see {@link startConsumer}. */
class Worker {
  private readonly acks: string[] = [];
  private readonly queue: PulledMessage[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly concurrency: number;
  private readonly maxInFlight: number;
  private readonly wait: string;
  private leased = 0;
  private pulling = false;
  private wake: (() => void) | undefined;
  private deadlineMs = 30_000;
  private deadline = "30s";
  private ackFlush: Promise<void> | undefined;
  /** Each leased message's extension timer, from its pull to its ack or nack. */
  private readonly extenders = new Map<string, ReturnType<typeof setInterval>>();

  constructor(
    private readonly api: SubscriptionsApi,
    private readonly id: number,
    private readonly handler: Handler,
    options: ConsumeOptions,
    clock: Clock,
  ) {
    this.backoff = new Backoff(clock);
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? this.concurrency);
    this.wait = toDuration(options.wait ?? 20_000);
  }

  get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  /** Pulls until stopped or a fatal error; then drains. */
  async run(): Promise<void> {
    let failure: Error | undefined;
    try {
      const view = await this.api.get(this.id);
      this.deadline = view.ack_deadline ?? "30s";
      this.deadlineMs = parseDuration(this.deadline);
      while (!this.stopping) {
        if (this.leased >= this.maxInFlight) await this.idle();
        else await this.pullOnce();
      }
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      this.abort.abort();
    }
    await this.drain();
    if (failure !== undefined) throw failure;
  }

  stop(): void {
    this.abort.abort();
    this.wake?.();
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private async pullOnce(): Promise<void> {
    const ackIds = this.acks.splice(0);
    this.pulling = true;
    try {
      const answer = await this.api.pull(
        this.id,
        { max_messages: Math.min(1000, this.maxInFlight - this.leased), wait: this.wait, ack_ids: ackIds },
        this.abort.signal,
      );
      this.backoff.reset();
      if (!Array.isArray(answer.messages)) throw malformed("a pull's answer has no messages list");
      for (const pulled of answer.messages) this.accept(pulled);
    } catch (error) {
      this.acks.push(...ackIds); // acking again is harmless: at worst `unknown`
      if (this.stopping) return;
      if (error instanceof HeraldError && error.type === MALFORMED) throw error;
      if (error instanceof HeraldError && !isRetryableStatus(error.status)) throw error;
      await this.backoff.wait(error instanceof HeraldError ? error.retryAfter : null, this.abort.signal);
    } finally {
      this.pulling = false;
    }
  }

  private accept(pulled: { ack_id: unknown; attempt: unknown; message: unknown }): void {
    if (typeof pulled.ack_id !== "string" || typeof pulled.attempt !== "number") {
      throw malformed(`a pulled message has no ack_id or attempt: ${JSON.stringify(pulled).slice(0, 200)}`);
    }
    this.leased += 1;
    this.leaseUntilSettled(pulled.ack_id);
    this.queue.push({ ackId: pulled.ack_id, attempt: pulled.attempt, message: toEnvelope(pulled.message) });
    this.dispatch();
  }

  private dispatch(): void {
    while (this.running.size < this.concurrency && !this.stopping) {
      const next = this.queue.shift();
      if (next === undefined) return;
      const task = this.handle(next).finally(() => {
        this.running.delete(task);
        this.dispatch();
      });
      this.running.add(task);
    }
  }

  /**
   * Extends a lease every half deadline from the pull on, while the message waits
   * for a handler and while it runs (a queued message's lease runs out too).
   */
  private leaseUntilSettled(ackId: string): void {
    const half = Math.max(500, this.deadlineMs / 2);
    const extender = setInterval(() => {
      if (this.stopping) return this.settled(ackId); // stop() lets a hung handler's lease run out
      this.api.extend(this.id, [ackId], this.deadline).catch(() => undefined);
    }, half);
    this.extenders.set(ackId, extender);
  }

  private settled(ackId: string): void {
    clearInterval(this.extenders.get(ackId));
    this.extenders.delete(ackId);
  }

  private async handle(pulled: PulledMessage): Promise<void> {
    try {
      await this.handler(pulled);
      this.acks.push(pulled.ackId);
      if (this.pulling || this.stopping) this.scheduleAckFlush();
    } catch (error) {
      const delay = delayOf(error);
      await this.api
        .nack(this.id, [pulled.ackId], delay === undefined ? undefined : toDuration(delay))
        .catch(() => undefined); // a lost nack: the lease runs out and herald redelivers
    } finally {
      this.settled(pulled.ackId);
      this.leased -= 1;
      this.wake?.();
    }
  }

  /** Acks finished work now when no pull is about to carry it. */
  private scheduleAckFlush(): void {
    // One flush at a time, held until its acks are answered (drain waits for it);
    // acks finished meanwhile go in its next round. A failed ack stays queued for
    // the next pull or the drain.
    this.ackFlush ??= (async () => {
      await Promise.resolve();
      while (this.acks.length > 0) {
        const ackIds = this.acks.splice(0);
        try {
          await this.api.ack(this.id, ackIds);
        } catch {
          this.acks.push(...ackIds);
          return;
        }
      }
    })().finally(() => {
      this.ackFlush = undefined;
    });
  }

  /** Waits for running handlers; gives back what was pulled but not started; acks the rest. */
  private async drain(): Promise<void> {
    const unstarted = this.queue.splice(0);
    this.leased -= unstarted.length;
    for (const p of unstarted) this.settled(p.ackId);
    if (unstarted.length > 0) {
      await this.api.nack(this.id, unstarted.map((p) => p.ackId), "0s").catch(() => undefined);
    }
    while (this.running.size > 0) await Promise.all([...this.running]);
    while (this.ackFlush !== undefined) await this.ackFlush;
    const ackIds = this.acks.splice(0);
    if (ackIds.length > 0) await this.api.ack(this.id, ackIds).catch(() => undefined);
  }
}

/** Starts a consumer (see `Herald.consume`). */
export function startConsumer(
  api: SubscriptionsApi,
  id: number,
  handler: Handler,
  options: ConsumeOptions,
  clock: Clock,
): Consumer {
  const worker = new Worker(api, id, handler, options, clock);
  const done = worker.run().catch((error: unknown) => {
    options.onError?.(error);
    throw error;
  });
  done.catch(() => undefined); // the caller may never look at `done`
  return {
    done,
    stop: async () => {
      worker.stop();
      await done.catch(() => undefined);
    },
  };
}
