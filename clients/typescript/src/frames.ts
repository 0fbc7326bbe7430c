/**
 * What a stream carries, checked: envelopes, gaps and presence events. Anything
 * that does not have the documented shape is a `HeraldError` of type
 * `urn:herald:client:malformed`, never skipped.
 */
import { malformed, type Gap, type GapTopic } from "./errors.js";
import type { components } from "./generated.js";

/** A message as herald stores and streams it. */
export type Envelope = components["schemas"]["Envelope"];

/** A `join` or `leave` presence event (with `presence: true`). */
export interface PresenceEvent {
  kind: "join" | "leave";
  topic: string;
  client: string;
  connection: string;
  time: string;
}

/** One thing a transport read from herald. */
export type StreamEvent =
  | { kind: "message"; envelope: Envelope }
  | { kind: "gap"; gap: Gap }
  | PresenceEvent;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return (text ?? "undefined").slice(0, 200);
}

/** Parses JSON text, or raises malformed naming `what`. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw malformed(`${what} is not JSON: ${text.slice(0, 200)}`);
  }
}

/** Checks an envelope's shape. */
export function toEnvelope(value: unknown): Envelope {
  if (!isObject(value)) throw malformed(`an envelope is not a JSON object: ${preview(value)}`);
  const v = value;
  const ok =
    isInt(v.id) &&
    typeof v.topic === "string" &&
    isInt(v.seq) &&
    typeof v.time === "string" &&
    typeof v.event === "string" &&
    isInt(v.priority) &&
    "data" in v &&
    (v.key === undefined || v.key === null || typeof v.key === "string") &&
    (v.expires === undefined || v.expires === null || typeof v.expires === "string");
  if (!ok) throw malformed(`not an envelope: ${JSON.stringify(value).slice(0, 200)}`);
  return v as unknown as Envelope;
}

function toGapTopic(value: unknown): GapTopic {
  if (!isObject(value) || typeof value.topic !== "string" || !isInt(value.lost_through)) {
    throw malformed(`a gap's topic is malformed: ${JSON.stringify(value)}`);
  }
  return { topic: value.topic, lost_through: value.lost_through };
}

/** Checks a gap's shape. */
export function toGap(value: unknown): Gap {
  if (!isObject(value) || !isInt(value.after) || !isInt(value.resumed_from) || !isInt(value.oldest_available)) {
    throw malformed(`not a gap: ${preview(value)}`);
  }
  const topics = value.topics === undefined ? [] : value.topics;
  if (!Array.isArray(topics)) throw malformed(`a gap's topics are not a list: ${JSON.stringify(value.topics)}`);
  return {
    after: value.after,
    oldest_available: value.oldest_available,
    resumed_from: value.resumed_from,
    topics: topics.map(toGapTopic),
  };
}

/** Checks a presence event's shape. */
export function toPresence(kind: "join" | "leave", value: unknown): PresenceEvent {
  if (
    !isObject(value) ||
    typeof value.topic !== "string" ||
    typeof value.client !== "string" ||
    typeof value.connection !== "string" ||
    typeof value.time !== "string"
  ) {
    throw malformed(`not a ${kind} event: ${preview(value)}`);
  }
  return { kind, topic: value.topic, client: value.client, connection: value.connection, time: value.time };
}

/** Checks a stream's start (`Herald-Start-After`, `start_after`): a message id. */
export function toStartAfter(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === "string" || typeof value === "number" ? String(value) : JSON.stringify(value);
  if (!/^\d+$/.test(text)) throw malformed(`the stream's start is not a message id: ${text.slice(0, 100)}`);
  return text;
}
