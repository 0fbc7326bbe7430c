/** `publish` and `publishBatch`: `POST /topics/{topic}` and `POST /topics/{topic}/batch`. */
import { toDuration } from "./duration.js";
import type { components } from "./generated.js";
import type { HttpClient, Query } from "./http.js";

type S = components["schemas"];

/** Options of a publish (single or batch). Durations are milliseconds or herald strings. */
export interface PublishOptions {
  /** The event type (default `message`). */
  event?: string;
  /** The ordering key. */
  key?: string;
  /** 1–5, or `min`, `low`, `default`, `high`, `max`. */
  priority?: number | "min" | "low" | "default" | "high" | "max";
  /** Sent as `Idempotency-Key`. */
  idempotencyKey?: string;
  /** How long the message lives. */
  ttl?: number | string;
  /** Publish after this long (answers `202`). */
  delay?: number | string;
  /** Publish at this time (answers `202`). */
  at?: Date | string;
  /** A W3C trace context, sent as `traceparent`. */
  traceparent?: string;
}

/** `replayed: true` when herald answered an earlier request's result (Idempotency-Key). */
export interface Replayed {
  replayed?: boolean;
}

/** Options without `delay` and `at`: the publish answers `201` with the message's id. */
export type ImmediateOptions = Omit<PublishOptions, "delay" | "at"> & { delay?: undefined; at?: undefined };

/** The answer to a publish stored at once. */
export type Published = S["Ack"] & Replayed;

/** The answer to a batch stored at once. */
export type PublishedBatch = S["BatchAck"] & Replayed;

/** The answer to a publish: `{id, topic, seq, time}`, or `{schedule_id, topic, deliver_at}`. */
export type PublishResult = (S["Ack"] | S["Scheduled"]) & Replayed;

/** The answer to a batch: one answer per item. */
export type PublishBatchResult = (S["BatchAck"] | S["ScheduledBatch"]) & Replayed;

function query(options: PublishOptions): Query {
  return {
    event: options.event,
    key: options.key,
    priority: options.priority,
    ttl: options.ttl === undefined ? undefined : toDuration(options.ttl),
    delay: options.delay === undefined ? undefined : toDuration(options.delay),
    at: options.at instanceof Date ? options.at.toISOString() : options.at,
  };
}

function headers(options: PublishOptions): Record<string, string | undefined> {
  return { "idempotency-key": options.idempotencyKey, traceparent: options.traceparent };
}

async function send<T>(http: HttpClient, path: string, body: { text?: string; json?: unknown }, options: PublishOptions): Promise<T & Replayed> {
  const answer = await http.request<T>({ method: "POST", path, query: query(options), headers: headers(options), ...body });
  if (answer.headers.get("idempotent-replayed") === "true") return { ...answer.body, replayed: true };
  return answer.body as T & Replayed;
}

/** `POST /topics/{topic}`: a string is sent as `text/plain`, anything else as JSON. */
export function publish(http: HttpClient, topic: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
  const body = typeof data === "string" ? { text: data } : { json: data };
  return send<S["Ack"] | S["Scheduled"]>(http, `/topics/${encodeURIComponent(topic)}`, body, options);
}

/** `POST /topics/{topic}/batch` with the items as a JSON array: all or nothing. */
export function publishBatch(
  http: HttpClient,
  topic: string,
  items: readonly unknown[],
  options: PublishOptions = {},
): Promise<PublishBatchResult> {
  return send<S["BatchAck"] | S["ScheduledBatch"]>(http, `/topics/${encodeURIComponent(topic)}/batch`, { json: items }, options);
}
