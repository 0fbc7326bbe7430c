/**
 * A small WebSocket abstraction over the platform's `WebSocket` (browsers) and
 * npm `ws` (Node, imported lazily, so browser bundles never need it). With `ws`
 * a refused upgrade (`401`, `403`, `429`…) is a `HeraldError` with its status.
 */
import { HeraldError } from "../errors.js";
import { parseRetryAfter } from "../http.js";

/** An open socket. */
export interface Socket {
  send(text: string): void;
  close(code: number): void;
  /** Text frames (null for a binary one). */
  onMessage: (data: string | null) => void;
  onClose: (code: number, reason: string) => void;
}

interface EventLike {
  data?: unknown;
  code?: number;
  reason?: string;
}

interface WebSocketLike {
  send(text: string): void;
  close(code?: number): void;
  addEventListener(type: string, listener: (event: EventLike) => void): void;
  on?: (event: string, listener: (...args: never[]) => void) => void;
}

type WebSocketConstructor = new (url: string) => WebSocketLike;

interface IncomingLike {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "end" | "error", listener: () => void): void;
}

let cached: Promise<WebSocketConstructor> | undefined;

/** npm `ws` in Node (so refused upgrades give their status), else the global `WebSocket`. */
export function webSocketConstructor(): Promise<WebSocketConstructor> {
  cached ??= (async () => {
    const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
    const isNode = typeof proc?.versions?.node === "string";
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!isNode && global !== undefined) return global;
    const module = (await import("ws")) as unknown as { default: WebSocketConstructor };
    return module.default;
  })();
  return cached;
}

function refused(response: IncomingLike): Promise<HeraldError> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    const finish = (): void => {
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      const text = new TextDecoder().decode(bytes);
      const header = response.headers["retry-after"];
      const retryAfter = parseRetryAfter(typeof header === "string" ? header : null);
      const status = response.statusCode ?? 0;
      let problem: Record<string, unknown>;
      try {
        problem = JSON.parse(text) as Record<string, unknown>;
      } catch {
        problem = {};
      }
      resolve(
        new HeraldError({
          type: typeof problem.type === "string" ? problem.type : "about:blank",
          status,
          title: typeof problem.title === "string" ? problem.title : (response.statusMessage ?? `HTTP ${status}`),
          detail: typeof problem.detail === "string" ? problem.detail : text.slice(0, 500),
          requestId: typeof problem.request_id === "string" ? problem.request_id : null,
          retryAfter,
        }),
      );
    };
    response.on("data", (chunk) => chunks.push(chunk));
    response.on("end", finish);
    response.on("error", finish);
  });
}

function textOf(data: unknown): string | null {
  return typeof data === "string" ? data : null;
}

/** Opens a socket; rejects on a refused upgrade, a network error, a timeout or `signal`. */
export async function openSocket(url: string, signal: AbortSignal, timeoutMs: number): Promise<Socket> {
  const Ctor = await webSocketConstructor();
  const ws = new Ctor(url);
  const socket: Socket = {
    send: (text) => ws.send(text),
    close: (code) => ws.close(code),
    onMessage: () => undefined,
    onClose: () => undefined,
  };
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error("the WebSocket failed"));
    };
    const onAbort = (): void => {
      ws.close();
      settle(signal.reason ?? new Error("aborted"));
    };
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            ws.close();
            settle(new Error("the WebSocket did not open in time"));
          }, timeoutMs)
        : undefined;
    signal.addEventListener("abort", onAbort, { once: true });
    ws.on?.("unexpected-response", ((request: { destroy(): void }, response: IncomingLike) => {
      void refused(response).then((error) => {
        request.destroy();
        settle(error);
      });
    }));
    ws.addEventListener("open", () => settle());
    ws.addEventListener("error", () => settle(new Error("the WebSocket failed")));
    ws.addEventListener("close", (event) => {
      settle(new Error(`the WebSocket closed (${event.code ?? 0})`));
      socket.onClose(event.code ?? 0, event.reason ?? "");
    });
    ws.addEventListener("message", (event) => socket.onMessage(textOf(event.data)));
  });
  return socket;
}
