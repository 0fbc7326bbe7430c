/**
 * The WebSocket transport: `GET /ws`, one socket per subscription, the
 * `subscribe` op. The browser's (or the platform's) `WebSocket`, or npm `ws` in
 * Node, loaded only when a WebSocket subscription opens.
 */
import { HeraldError, malformed } from "../errors.js";
import { parseJson, toEnvelope, toGap, toPresence, toStartAfter, type StreamEvent } from "../frames.js";
import type { HttpClient } from "../http.js";
import type { StreamConnection, StreamRequest, Transport } from "./types.js";
import { openSocket, type Socket } from "./socket.js";

/** The name of the one subscription on each socket. */
const SUB = "s";

type Frame = Record<string, unknown>;

/** An `error` frame as a `HeraldError`. */
export function errorFromFrame(frame: Frame): HeraldError {
  const status = typeof frame.status === "number" ? frame.status : 0;
  return new HeraldError({
    type: typeof frame.type === "string" ? frame.type : "about:blank",
    status,
    title: typeof frame.title === "string" ? frame.title : "WebSocket error",
    detail: typeof frame.detail === "string" ? frame.detail : "",
    requestId: typeof frame.request_id === "string" ? frame.request_id : null,
    retryAfter: typeof frame.retry_after === "number" ? frame.retry_after : null,
  });
}

function parseFrame(data: string | null): Frame {
  if (data === null) throw malformed("herald sent a binary frame");
  const frame = parseJson(data, "a WebSocket frame") as Frame | null;
  if (typeof frame !== "object" || frame === null || Array.isArray(frame) || typeof frame.op !== "string") {
    throw malformed(`a WebSocket frame has no op: ${data.slice(0, 200)}`);
  }
  return frame;
}

/** One server frame after `subscribed` as a checked stream event. */
export function fromFrame(frame: Frame): StreamEvent {
  const { op, sub, ...rest } = frame;
  if (op === "error") throw errorFromFrame(frame);
  if (sub !== SUB) throw malformed(`a ${String(op)} frame for an unknown subscription ${JSON.stringify(sub)}`);
  if (op === "message") return { kind: "message", envelope: toEnvelope(rest) };
  if (op === "gap") return { kind: "gap", gap: toGap(rest) };
  if (op === "join" || op === "leave") return toPresence(op, rest);
  throw malformed(`an unexpected WebSocket frame: ${JSON.stringify(frame).slice(0, 200)}`);
}

type Item = { frame: Frame; size: number } | { error: unknown } | { end: true };

/**
 * Frames received and not yet taken, at most: a reader that falls this far behind
 * loses the socket (and reconnects from the last message it took), so that memory
 * stays bounded whatever the reader's pace. A browser `WebSocket` cannot be paused.
 */
export const MAX_QUEUED_FRAMES = 10_000;
/** … and at most this many characters of frame text. */
export const MAX_QUEUED_CHARS = 32 * 1024 * 1024;

class WsConnection implements StreamConnection {
  startAfter: string | undefined;
  private readonly items: Item[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private queuedChars = 0;

  constructor(private readonly socket: Socket) {
    socket.onMessage = (data) => this.push(this.safeParse(data));
    socket.onClose = () => this.push({ end: true });
  }

  /** Waits for `subscribed` (or an `error` frame, thrown). */
  async subscribed(): Promise<void> {
    const item = await this.take();
    if ("end" in item) throw new Error("the WebSocket closed before it subscribed");
    if ("error" in item) throw item.error;
    const { frame } = item;
    if (frame.op === "error") throw errorFromFrame(frame);
    if (frame.op !== "subscribed" || frame.sub !== SUB) {
      throw malformed(`expected a subscribed frame, got ${JSON.stringify(frame).slice(0, 200)}`);
    }
    this.startAfter = toStartAfter(frame.start_after);
  }

  async next(): Promise<StreamEvent | undefined> {
    for (;;) {
      const item = await this.take();
      if ("end" in item) return undefined;
      if ("error" in item) throw item.error;
      if (item.frame.op === "pong") continue;
      return fromFrame(item.frame);
    }
  }

  close(): void {
    this.ended = true;
    this.socket.close(1000);
  }

  private safeParse(data: string | null): Item {
    try {
      return { frame: parseFrame(data), size: data?.length ?? 0 };
    } catch (error) {
      return { error };
    }
  }

  private push(item: Item): void {
    if (this.ended && !("end" in item)) return;
    if ("frame" in item) {
      if (this.items.length >= MAX_QUEUED_FRAMES || this.queuedChars + item.size > MAX_QUEUED_CHARS) {
        this.close();
        item = { error: new Error(`the reader fell ${this.items.length} frames behind; reconnecting from the last one it took`) };
      } else {
        this.queuedChars += item.size;
      }
    }
    this.items.push(item);
    this.wake?.();
  }

  private async take(): Promise<Item> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined && "frame" in item) this.queuedChars -= item.size;
      if (item !== undefined) return item;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/** `promise`, or a rejection after `ms` (0: no limit). */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  if (ms <= 0) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Opens WebSocket subscriptions on one herald. */
export class WsTransport implements Transport {
  constructor(private readonly http: HttpClient) {}

  async open(request: StreamRequest, signal: AbortSignal): Promise<StreamConnection> {
    const url = new URL(this.http.url("/ws", { access_token: this.http.token, client: request.client }));
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = await openSocket(url.toString(), signal, this.http.timeoutMs);
    const connection = new WsConnection(socket);
    const onAbort = (): void => connection.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      socket.send(
        JSON.stringify({
          op: "subscribe",
          sub: SUB,
          topics: request.topics,
          filter: request.filter,
          last_event_id: request.cursor,
          presence: request.presence || undefined,
        }),
      );
      await withTimeout(connection.subscribed(), this.http.timeoutMs, "herald did not answer the subscribe frame");
      return connection;
    } catch (error) {
      connection.close();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

