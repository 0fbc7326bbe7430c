/**
 * A subscription: an async iterator of envelopes over SSE or the WebSocket that
 * reconnects with backoff and resumes exactly after the last message it yielded.
 */
import { Backoff, type Clock } from "./backoff.js";
import { GapError, HeraldError, MALFORMED, isRetryableStatus, type Gap } from "./errors.js";
import type { Envelope, PresenceEvent } from "./frames.js";
import type { StreamConnection, StreamRequest, Transport } from "./transport/types.js";

/** `connecting`, `connected`, `disconnected` (waiting to reconnect) or `closed`. */
export type SubscriptionState = "connecting" | "connected" | "disconnected" | "closed";

/** What a subscription yields: envelopes, and presence events with `presence: true`. */
export type SubscriptionItem = Envelope | PresenceEvent;

/** Options of `Herald.subscribe`. */
export interface SubscribeOptions {
  /** A filter expression (docs/filters.md). */
  filter?: string;
  /** `"earliest"`, a message id (everything after it), or absent (only new messages). */
  from?: string | number;
  /** `"sse"` (default) or `"ws"`. */
  transport?: "sse" | "ws";
  /** Also yield `join` and `leave` events. */
  presence?: boolean;
  /** Called with each gap; without it a gap ends the subscription with `GapError`. */
  onGap?: (gap: Gap) => void;
  /** Called on each change of state. */
  onState?: (state: SubscriptionState, error?: unknown) => void;
  /** The `client` label (used when the caller has no token). */
  client?: string;
}

/** Whether an error ends the subscription rather than causing a reconnect. */
export function isFatal(error: unknown): boolean {
  if (error instanceof GapError) return true;
  if (!(error instanceof HeraldError)) return false;
  return error.type === MALFORMED || !isRetryableStatus(error.status);
}

/**
 * A subscription. Iterate it with `for await`; `close()` or `break` ends it. It
 * connects when it is first iterated (the first `next()`), not when it is made.
 */
export class Subscription<T extends SubscriptionItem = Envelope> implements AsyncIterableIterator<T> {
  private cursor: string | undefined;
  private last: string | undefined;
  private state: SubscriptionState | undefined;
  private connection: StreamConnection | undefined;
  private readonly abort = new AbortController();
  private readonly iterator: AsyncGenerator<T, undefined>;

  /** Use `Herald.subscribe`. */
  constructor(
    private readonly transport: Transport,
    private readonly topics: string[],
    private readonly options: SubscribeOptions,
    private readonly clock: Clock,
  ) {
    this.cursor = options.from === undefined ? undefined : String(options.from);
    this.iterator = this.run();
  }

  /** The id of the last message yielded (undefined before the first). */
  get lastEventId(): string | undefined {
    return this.last;
  }

  /** The current state. */
  get currentState(): SubscriptionState | undefined {
    return this.state;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next envelope (or presence event). */
  next(): Promise<IteratorResult<T, undefined>> {
    return this.iterator.next();
  }

  /** Called by `break`: closes the subscription. */
  async return(): Promise<IteratorResult<T, undefined>> {
    this.close();
    return this.iterator.return(undefined);
  }

  /** Ends the stream and the iterator. */
  close(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.connection?.close();
    this.setState("closed");
  }

  private isClosed(): boolean {
    return this.abort.signal.aborted;
  }

  private setState(state: SubscriptionState, error?: unknown): void {
    if (this.state === state || this.state === "closed") return;
    this.state = state;
    this.options.onState?.(state, error);
  }

  private request(): StreamRequest {
    const { filter, presence, client } = this.options;
    return { topics: this.topics, filter, presence, client, cursor: this.cursor };
  }

  private async *run(): AsyncGenerator<T, undefined> {
    const backoff = new Backoff(this.clock);
    try {
      while (!this.isClosed()) {
        this.setState("connecting");
        const connection = await this.connect();
        if (connection instanceof Failure) {
          if (this.isClosed()) break;
          await this.pause(backoff, connection.error);
          continue;
        }
        backoff.connected();
        this.setState("connected");
        const error = yield* this.stream(connection);
        if (this.isClosed()) break;
        await this.pause(backoff, error);
      }
    } catch (error) {
      this.abort.abort();
      this.setState("closed", error);
      throw error;
    } finally {
      this.close();
    }
    return undefined;
  }

  private async connect(): Promise<StreamConnection | Failure> {
    try {
      const connection = await this.transport.open(this.request(), this.abort.signal);
      if (this.isClosed()) {
        connection.close();
        return new Failure(undefined);
      }
      this.connection = connection;
      // Before the first message the cursor is where the stream says it starts.
      if (this.cursor === undefined && connection.startAfter !== undefined) this.cursor = connection.startAfter;
      return connection;
    } catch (error) {
      if (!this.isClosed() && isFatal(error)) throw error;
      return new Failure(error);
    }
  }

  /** Yields what a connection reads; answers the error that dropped it (undefined: it ended). */
  private async *stream(connection: StreamConnection): AsyncGenerator<T, unknown> {
    try {
      for (;;) {
        let event;
        try {
          event = await connection.next();
        } catch (error) {
          if (!this.isClosed() && isFatal(error)) throw error;
          return error;
        }
        if (event === undefined || this.isClosed()) return undefined;
        if (event.kind === "gap") {
          this.gap(event.gap);
        } else if (event.kind === "message") {
          this.cursor = String(event.envelope.id);
          this.last = this.cursor;
          yield event.envelope as T;
        } else {
          yield event as T; // presence events come only with `presence: true`
        }
      }
    } finally {
      connection.close();
      this.connection = undefined;
    }
  }

  private gap(gap: Gap): void {
    if (this.options.onGap === undefined) throw new GapError(gap);
    this.options.onGap(gap);
    this.cursor = String(gap.resumed_from); // the stream goes on from there
  }

  private async pause(backoff: Backoff, error: unknown): Promise<void> {
    this.setState("disconnected", error);
    const retryAfter = error instanceof HeraldError ? error.retryAfter : null;
    await backoff.wait(retryAfter, this.abort.signal);
  }
}

/** A failed attempt to connect that is retried. */
class Failure {
  constructor(readonly error: unknown) {}
}
