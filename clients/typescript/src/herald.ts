/** The `Herald` client. */
import { makeClock, type BackoffOptions, type Clock } from "./backoff.js";
import { startConsumer, type ConsumeOptions, type Consumer, type Handler } from "./consumer.js";
import type { Envelope, PresenceEvent } from "./frames.js";
import { HttpClient } from "./http.js";
import {
  publish,
  publishBatch,
  type ImmediateOptions,
  type PublishBatchResult,
  type PublishOptions,
  type PublishResult,
  type Published,
  type PublishedBatch,
} from "./publish.js";
import { DeadLettersApi, ScheduledApi, SubscriptionsApi, TokensApi, TopicsApi } from "./resources.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import { SseTransport } from "./transport/sse.js";
import type { Transport } from "./transport/types.js";
import { WsTransport } from "./transport/ws.js";

/** Options of `new Herald(…)`. */
export interface HeraldOptions {
  /** herald's base URL, e.g. `http://localhost:8080`. */
  url: string;
  /** A bearer token (JWT or `hrd_…`): `Authorization` on every request, `?access_token=` on the WebSocket. */
  token?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** Timeout of each request (and of opening a stream), in milliseconds (default 30 s; 0: none). */
  timeoutMs?: number;
  /** Replaces the randomness, clock and sleep of the backoff (for tests). */
  backoff?: BackoffOptions;
}

/** A client of one herald. */
export class Herald {
  /** `/topics…` */
  readonly topics: TopicsApi;
  /** `/subscriptions…` */
  readonly subscriptions: SubscriptionsApi;
  /** `/dead-letters…` */
  readonly deadLetters: DeadLettersApi;
  /** `/tokens…` */
  readonly tokens: TokensApi;
  /** `/scheduled…` */
  readonly scheduled: ScheduledApi;
  private readonly http: HttpClient;
  private readonly clock: Clock;

  constructor(options: HeraldOptions) {
    this.http = new HttpClient(options);
    this.clock = makeClock(options.backoff);
    this.topics = new TopicsApi(this.http);
    this.subscriptions = new SubscriptionsApi(this.http);
    this.deadLetters = new DeadLettersApi(this.http);
    this.tokens = new TokensApi(this.http);
    this.scheduled = new ScheduledApi(this.http);
  }

  /**
   * Publishes one message (`POST /topics/{topic}`): a string as `text/plain`, anything
   * else as JSON. Answers `{id, topic, seq, time}`, or `{schedule_id, topic, deliver_at}`
   * with `delay` or `at`.
   */
  publish(topic: string, data: unknown, options?: ImmediateOptions): Promise<Published>;
  publish(topic: string, data: unknown, options: PublishOptions): Promise<PublishResult>;
  publish(topic: string, data: unknown, options?: PublishOptions): Promise<PublishResult> {
    return publish(this.http, topic, data, options);
  }

  /** Publishes a batch (`POST /topics/{topic}/batch`): all or nothing, one answer per item. */
  publishBatch(topic: string, items: readonly unknown[], options?: ImmediateOptions): Promise<PublishedBatch>;
  publishBatch(topic: string, items: readonly unknown[], options: PublishOptions): Promise<PublishBatchResult>;
  publishBatch(topic: string, items: readonly unknown[], options?: PublishOptions): Promise<PublishBatchResult> {
    return publishBatch(this.http, topic, items, options);
  }

  /**
   * Subscribes to a topic, a pattern, or a list of them: an async iterator of envelopes
   * that reconnects by itself and resumes exactly after the last message it yielded.
   */
  subscribe(topics: string | readonly string[], options: SubscribeOptions & { presence: true }): Subscription<Envelope | PresenceEvent>;
  subscribe(topics: string | readonly string[], options?: SubscribeOptions): Subscription;
  subscribe(topics: string | readonly string[], options: SubscribeOptions = {}): Subscription<Envelope | PresenceEvent> {
    const list = typeof topics === "string" ? [topics] : [...topics];
    if (list.length === 0) throw new TypeError("subscribe needs at least one topic");
    const transport: Transport = options.transport === "ws" ? new WsTransport(this.http) : new SseTransport(this.http);
    return new Subscription<Envelope | PresenceEvent>(transport, list, options, this.clock);
  }

  /**
   * Runs a worker over a pull subscription: `handler` resolving acks the message,
   * throwing nacks it (with `Retry`'s delay). Answers `{stop(), done}`.
   */
  consume(subscriptionId: number, handler: Handler, options: ConsumeOptions = {}): Consumer {
    return startConsumer(this.subscriptions, subscriptionId, handler, options, this.clock);
  }
}
