/** What a subscription needs from a transport (SSE or WebSocket). */
import type { StreamEvent } from "../frames.js";

/** What to stream. */
export interface StreamRequest {
  topics: string[];
  filter?: string | undefined;
  /** `"earliest"`, a message id to resume after, or undefined (live only). */
  cursor?: string | undefined;
  presence?: boolean | undefined;
  client?: string | undefined;
}

/** One open stream. */
export interface StreamConnection {
  /** Where herald says the stream starts (`Herald-Start-After`, `start_after`). */
  readonly startAfter: string | undefined;
  /** The next event; undefined when the stream ended. Throws on network errors and bad input. */
  next(): Promise<StreamEvent | undefined>;
  /** Ends the stream. */
  close(): void;
}

/** Opens streams. `open` throws `HeraldError` for an answer that is not a stream. */
export interface Transport {
  open(request: StreamRequest, signal: AbortSignal): Promise<StreamConnection>;
}

/** Whether a topic argument is a pattern (streams of several topics use `/events`). */
export function isPattern(topic: string): boolean {
  return topic.includes("*");
}
