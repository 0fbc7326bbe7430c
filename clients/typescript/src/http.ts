/** One HTTP call to herald: URL, token, timeout, JSON, and problems as `HeraldError`. */
import { HeraldError } from "./errors.js";
import { parseJson } from "./frames.js";
import type { components } from "./generated.js";

type Problem = components["schemas"]["Problem"];

/** Query parameters; `undefined` and `null` values are left out, arrays repeat. */
export type Query = Record<string, string | number | boolean | readonly (string | number)[] | undefined | null>;

/** One request. */
export interface RequestSpec {
  method: string;
  path: string;
  query?: Query | undefined;
  /** A JSON body (`text` wins when both are given). */
  json?: unknown;
  /** A `text/plain` body. */
  text?: string | undefined;
  headers?: Record<string, string | undefined> | undefined;
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeout (0: none). */
  timeoutMs?: number | undefined;
}

/** What {@link HttpClient.request} answers. */
export interface HttpAnswer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** The connection settings every request shares. */
export interface HttpOptions {
  url: string;
  token?: string | undefined;
  fetch?: typeof fetch | undefined;
  timeoutMs?: number | undefined;
}

/** Seconds of a `Retry-After` header (delta seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p.type === "string" && typeof p.status === "number" && typeof p.title === "string";
}

/** A `HeraldError` from a failed answer (problem+json or not). */
export async function errorFromResponse(response: Response): Promise<HeraldError> {
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  const text = await response.text().catch(() => "");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (isProblem(parsed)) {
    const requestId = parsed.request_id ?? response.headers.get("x-request-id");
    return HeraldError.fromProblem({ ...parsed, request_id: requestId }, retryAfter);
  }
  return new HeraldError({
    type: "about:blank",
    status: response.status,
    title: response.statusText || `HTTP ${response.status}`,
    detail: text.slice(0, 500),
    requestId: response.headers.get("x-request-id"),
    retryAfter,
  });
}

/** Sends requests to one herald. */
export class HttpClient {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: HttpOptions) {
    this.baseUrl = options.url.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The absolute URL of a path with its query. */
  url(path: string, query?: Query): string {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      const values = Array.isArray(value) ? value : [value];
      for (const v of values as (string | number | boolean)[]) url.searchParams.append(name, String(v));
    }
    return url.toString();
  }

  /** Headers every request carries. */
  headers(extra?: Record<string, string | undefined>): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    for (const [name, value] of Object.entries(extra ?? {})) if (value !== undefined) headers[name] = value;
    return headers;
  }

  /** Sends a request and answers the raw `Response` (any status); no timeout when `timeoutMs` is 0. */
  async send(spec: RequestSpec): Promise<Response> {
    const headers = this.headers(spec.headers);
    let body: string | undefined;
    if (spec.text !== undefined) {
      headers["content-type"] = "text/plain; charset=utf-8";
      body = spec.text;
    } else if (spec.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(spec.json);
    }
    const timeout = spec.timeoutMs ?? this.timeoutMs;
    const signals = [spec.signal, timeout > 0 ? AbortSignal.timeout(timeout) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const init: RequestInit = { method: spec.method, headers };
    if (body !== undefined) init.body = body;
    if (signals.length > 0) init.signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    return this.fetchFn(this.url(spec.path, spec.query), init);
  }

  /** Sends a request; a non-2xx answer throws `HeraldError`, a 2xx one is parsed as JSON (204: undefined). */
  async request<T>(spec: RequestSpec): Promise<HttpAnswer<T>> {
    const response = await this.send(spec);
    if (!response.ok) throw await errorFromResponse(response);
    const text = await response.text();
    const body = (text === "" ? undefined : parseJson(text, `the answer to ${spec.method} ${spec.path}`)) as T;
    return { status: response.status, headers: response.headers, body };
  }

  /** {@link request}, answering only the body. */
  async call<T>(spec: RequestSpec): Promise<T> {
    return (await this.request<T>(spec)).body;
  }
}
