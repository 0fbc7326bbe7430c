/** Errors raised by the client: herald's problems, gaps, malformed input, and `Retry`. */
import type { components } from "./generated.js";

type Problem = components["schemas"]["Problem"];
type SchemaViolation = components["schemas"]["SchemaViolation"];

/** The `type` of a `HeraldError` raised for bad input from the server. */
export const MALFORMED = "urn:herald:client:malformed";

/** What a `HeraldError` is made from. */
export interface HeraldErrorInit {
  type: string;
  status: number;
  title: string;
  detail?: string;
  requestId?: string | null;
  errors?: SchemaViolation[];
  retryAfter?: number | null;
}

/**
 * Any answer from herald that is not `2xx`, an `error` frame on the WebSocket,
 * or malformed input from the server (`type` {@link MALFORMED}, `status` 0).
 */
export class HeraldError extends Error {
  /** The problem's type: `urn:herald:problem:…`, `about:blank`, or {@link MALFORMED}. */
  readonly type: string;
  /** The HTTP status (0 for malformed input). */
  readonly status: number;
  /** The problem's title. */
  readonly title: string;
  /** The problem's detail. */
  readonly detail: string;
  /** herald's request id (`x-request-id`), when it gave one. */
  readonly requestId: string | null;
  /** Schema violations, on `422`. */
  readonly errors: SchemaViolation[];
  /** Seconds from `Retry-After`, when the answer had one. */
  readonly retryAfter: number | null;

  constructor(init: HeraldErrorInit) {
    super(`${init.status} ${init.title}${init.detail ? `: ${init.detail}` : ""}`);
    this.name = "HeraldError";
    this.type = init.type;
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail ?? "";
    this.requestId = init.requestId ?? null;
    this.errors = init.errors ?? [];
    this.retryAfter = init.retryAfter ?? null;
  }

  /** A `HeraldError` from a problem object and the answer's `Retry-After`. */
  static fromProblem(problem: Problem, retryAfter: number | null): HeraldError {
    return new HeraldError({
      type: problem.type,
      status: problem.status,
      title: problem.title,
      detail: problem.detail,
      requestId: problem.request_id ?? null,
      errors: problem.errors ?? [],
      retryAfter,
    });
  }
}

/** A `HeraldError` for input from the server that the client cannot accept. */
export function malformed(detail: string): HeraldError {
  return new HeraldError({ type: MALFORMED, status: 0, title: "Malformed input from herald", detail });
}

/** One topic that lost history, as named by a `gap` event. */
export interface GapTopic {
  topic: string;
  lost_through: number;
}

/** A `gap` event: history after the cursor is gone. */
export interface Gap {
  after: number;
  oldest_available: number;
  resumed_from: number;
  topics: GapTopic[];
}

/** Raised by a subscription without `onGap` when herald reports a gap. */
export class GapError extends Error {
  /** The topics that lost history. */
  readonly topics: GapTopic[];
  /** The cursor the stream was asked to resume after. */
  readonly after: number;
  /** Where the stream resumed. */
  readonly resumedFrom: number;
  /** The whole gap event. */
  readonly gap: Gap;

  constructor(gap: Gap) {
    super(`history after ${gap.after} is gone (resumed from ${gap.resumed_from}): ${gap.topics.map((t) => t.topic).join(", ")}`);
    this.name = "GapError";
    this.topics = gap.topics;
    this.after = gap.after;
    this.resumedFrom = gap.resumed_from;
    this.gap = gap;
  }
}

/**
 * Throw from a `consume` handler to nack the message with a delay: milliseconds,
 * or a herald duration string (`"10s"`). Without a delay the subscription's
 * backoff applies.
 */
export class Retry extends Error {
  /** When to deliver the message again. */
  readonly delay: number | string | undefined;

  constructor(delay?: number | string, message?: string) {
    super(message ?? "retry");
    this.name = "Retry";
    this.delay = delay;
  }
}

/** Statuses after which `subscribe` and `consume` try again. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
