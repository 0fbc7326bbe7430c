/** Server-Sent Events over `fetch`, parsed by `eventsource-parser` (so headers work everywhere). */
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";
import { malformed } from "../errors.js";
import { parseJson, toEnvelope, toGap, toPresence, toStartAfter, type StreamEvent } from "../frames.js";
import { errorFromResponse, type HttpClient } from "../http.js";
import { isPattern, type StreamConnection, type StreamRequest, type Transport } from "./types.js";

/** Nothing read for this long (herald sends a comment every 15 s) drops the connection. */
export const SSE_IDLE_TIMEOUT_MS = 45_000;

/** One SSE event as a checked stream event. */
export function fromSse(event: EventSourceMessage): StreamEvent {
  const type = event.event ?? "message";
  if (type === "gap") return { kind: "gap", gap: toGap(parseJson(event.data, "a gap event's data")) };
  if (type === "join" || type === "leave") return toPresence(type, parseJson(event.data, `a ${type} event's data`));
  if (event.id === undefined) throw malformed(`an event of type ${type} has no id: ${event.data.slice(0, 200)}`);
  const envelope = toEnvelope(parseJson(event.data, "an event's data"));
  if (String(envelope.id) !== event.id) {
    throw malformed(`an event's id ${JSON.stringify(event.id)} is not its envelope's id ${envelope.id}`);
  }
  return { kind: "message", envelope };
}

class SseConnection implements StreamConnection {
  private readonly queue: EventSourceMessage[] = [];
  private readonly parser: EventSourceParser;
  private readonly decoder = new TextDecoder();
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    readonly startAfter: string | undefined,
    private readonly abort: AbortController,
    private readonly idleMs: number,
    private readonly release: () => void,
  ) {
    this.parser = createParser({ onEvent: (event) => this.queue.push(event) });
  }

  async next(): Promise<StreamEvent | undefined> {
    for (;;) {
      const event = this.queue.shift();
      if (event !== undefined) return fromSse(event);
      this.armIdle();
      const { done, value } = await this.reader.read().finally(() => clearTimeout(this.idle));
      if (done) return undefined;
      this.parser.feed(this.decoder.decode(value, { stream: true }));
    }
  }

  close(): void {
    clearTimeout(this.idle);
    this.release();
    this.abort.abort();
    this.reader.cancel().catch(() => undefined);
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.abort.abort(new Error("SSE stream idle")), this.idleMs);
  }
}

/** Opens SSE streams on one herald. */
export class SseTransport implements Transport {
  constructor(
    private readonly http: HttpClient,
    private readonly idleMs: number = SSE_IDLE_TIMEOUT_MS,
  ) {}

  async open(request: StreamRequest, signal: AbortSignal): Promise<StreamConnection> {
    const [only] = request.topics;
    const single = request.topics.length === 1 && only !== undefined && !isPattern(only);
    const earliest = request.cursor === "earliest";
    const abort = new AbortController();
    const onAbort = (): void => abort.abort(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const timeout = this.http.timeoutMs;
    const headersTimer = timeout > 0 ? setTimeout(() => abort.abort(new Error("no answer from herald")), timeout) : undefined;
    try {
      const response = await this.http.send({
        method: "GET",
        path: single ? `/topics/${encodeURIComponent(only)}/events` : "/events",
        query: {
          topic: single ? undefined : request.topics,
          filter: request.filter,
          presence: request.presence ? "true" : undefined,
          client: request.client,
          last_event_id: earliest ? "earliest" : undefined,
        },
        headers: { accept: "text/event-stream", "last-event-id": earliest ? undefined : request.cursor },
        signal: abort.signal,
        timeoutMs: 0,
      });
      if (!response.ok) throw await errorFromResponse(response);
      return this.connection(response, abort, () => signal.removeEventListener("abort", onAbort));
    } catch (error) {
      signal.removeEventListener("abort", onAbort);
      abort.abort();
      throw error;
    } finally {
      clearTimeout(headersTimer);
    }
  }

  private connection(response: Response, abort: AbortController, release: () => void): StreamConnection {
    const type = response.headers.get("content-type") ?? "";
    if (!type.startsWith("text/event-stream") || response.body === null) {
      throw malformed(`the stream's answer is ${response.status} ${type || "without a content type"}, not text/event-stream`);
    }
    const startAfter = toStartAfter(response.headers.get("herald-start-after"));
    return new SseConnection(response.body.getReader(), startAfter, abort, this.idleMs, release);
  }
}

