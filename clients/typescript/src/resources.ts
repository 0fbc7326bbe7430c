/** Thin typed calls, one per REST operation, named after the resource (docs/clients.md, "Resources"). */
import { toDuration } from "./duration.js";
import type { components, paths } from "./generated.js";
import type { HttpClient } from "./http.js";

type S = components["schemas"];
type QueryOf<P extends keyof paths, M extends "get"> = paths[P][M] extends { parameters: { query?: infer Q } }
  ? NonNullable<Q>
  : never;

const enc = encodeURIComponent;

/** `/topics…` */
export class TopicsApi {
  constructor(private readonly http: HttpClient) {}

  /** `GET /topics` */
  list(): Promise<S["TopicList"]> {
    return this.http.call({ method: "GET", path: "/topics" });
  }

  /** `GET /topics/{t}` */
  get(topic: string): Promise<S["TopicView"]> {
    return this.http.call({ method: "GET", path: `/topics/${enc(topic)}` });
  }

  /** `PUT /topics/{t}`: sets the whole configuration. */
  configure(topic: string, config: S["TopicConfig"]): Promise<S["TopicView"]> {
    return this.http.call({ method: "PUT", path: `/topics/${enc(topic)}`, json: config });
  }

  /** `DELETE /topics/{t}` */
  async delete(topic: string): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/topics/${enc(topic)}` });
  }

  /** `GET /topics/{t}/messages` */
  history(topic: string, query: QueryOf<"/topics/{topic}/messages", "get"> = {}): Promise<S["MessagesPage"]> {
    return this.http.call({ method: "GET", path: `/topics/${enc(topic)}/messages`, query });
  }

  /** `GET /topics/{t}/presence` */
  presence(topic: string, query: QueryOf<"/topics/{topic}/presence", "get"> = {}): Promise<S["PresenceView"]> {
    return this.http.call({ method: "GET", path: `/topics/${enc(topic)}/presence`, query });
  }
}

/** Where `seek` moves a subscription: all retained messages, only new ones, or after an id. */
export type SeekTarget = S["SeekTarget"];

/** `/subscriptions…` */
export class SubscriptionsApi {
  constructor(private readonly http: HttpClient) {}

  /** `POST /subscriptions` */
  create(subscription: S["CreateSubscription"]): Promise<S["SubscriptionView"]> {
    return this.http.call({ method: "POST", path: "/subscriptions", json: subscription });
  }

  /** `GET /subscriptions` */
  list(query: QueryOf<"/subscriptions", "get"> = {}): Promise<S["SubscriptionPage"]> {
    return this.http.call({ method: "GET", path: "/subscriptions", query });
  }

  /** `GET /subscriptions/{id}` */
  get(id: number): Promise<S["SubscriptionView"]> {
    return this.http.call({ method: "GET", path: `/subscriptions/${id}` });
  }

  /** `PATCH /subscriptions/{id}` */
  update(id: number, patch: S["PatchSubscription"]): Promise<S["SubscriptionView"]> {
    return this.http.call({ method: "PATCH", path: `/subscriptions/${id}`, json: patch });
  }

  /** `DELETE /subscriptions/{id}` */
  async delete(id: number): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/subscriptions/${id}` });
  }

  /** `POST /subscriptions/{id}/pull` (no client timeout: a long poll takes `wait`). */
  pull(id: number, request: S["PullRequest"], signal?: AbortSignal): Promise<S["PullResponse"]> {
    const timeoutMs = this.http.timeoutMs > 0 ? this.http.timeoutMs + 30_000 : 0;
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/pull`, json: request, signal, timeoutMs });
  }

  /** `POST /subscriptions/{id}/ack` */
  ack(id: number, ackIds: string[]): Promise<S["AckResponse"]> {
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/ack`, json: { ack_ids: ackIds } });
  }

  /** `POST /subscriptions/{id}/nack`; `delay` in ms or a herald duration (default: the subscription's backoff). */
  nack(id: number, ackIds: string[], delay?: number | string): Promise<S["ReletResponse"]> {
    const json: S["NackRequest"] =
      delay === undefined ? { ack_ids: ackIds } : { ack_ids: ackIds, delay: toDuration(delay) };
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/nack`, json });
  }

  /** `POST /subscriptions/{id}/extend`; `deadline` in ms or a herald duration, from now. */
  extend(id: number, ackIds: string[], deadline: number | string): Promise<S["ReletResponse"]> {
    const json: S["ExtendRequest"] = { ack_ids: ackIds, ack_deadline: toDuration(deadline) };
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/extend`, json });
  }

  /** `POST /subscriptions/{id}/seek` */
  seek(id: number, to: SeekTarget): Promise<S["SeekResponse"]> {
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/seek`, json: { to } });
  }

  /** `GET /subscriptions/{id}/attempts` */
  attempts(id: number, query: QueryOf<"/subscriptions/{id}/attempts", "get"> = {}): Promise<S["AttemptPage"]> {
    return this.http.call({ method: "GET", path: `/subscriptions/${id}/attempts`, query });
  }

  /** `POST /subscriptions/{id}/rotate-secret` */
  rotateSecret(id: number): Promise<S["RotatedSecret"]> {
    return this.http.call({ method: "POST", path: `/subscriptions/${id}/rotate-secret` });
  }
}

/** `/dead-letters…` */
export class DeadLettersApi {
  constructor(private readonly http: HttpClient) {}

  /** `GET /dead-letters` */
  list(query: QueryOf<"/dead-letters", "get"> = {}): Promise<S["DeadLetterPage"]> {
    return this.http.call({ method: "GET", path: "/dead-letters", query });
  }

  /** `GET /dead-letters/{id}` */
  get(id: number): Promise<S["DeadLetterView"]> {
    return this.http.call({ method: "GET", path: `/dead-letters/${id}` });
  }

  /** `DELETE /dead-letters/{id}` */
  async delete(id: number): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/dead-letters/${id}` });
  }

  /** `POST /dead-letters/{id}/redrive` */
  redrive(id: number): Promise<S["Redriven"]> {
    return this.http.call({ method: "POST", path: `/dead-letters/${id}/redrive` });
  }

  /** `POST /dead-letters/redrive` */
  redriveAll(request: S["RedriveAll"]): Promise<S["Redriven"]> {
    return this.http.call({ method: "POST", path: "/dead-letters/redrive", json: request });
  }
}

/** `/tokens…` */
export class TokensApi {
  constructor(private readonly http: HttpClient) {}

  /** `POST /tokens`: the answer shows the token once. */
  create(token: S["CreateToken"]): Promise<S["TokenView"]> {
    return this.http.call({ method: "POST", path: "/tokens", json: token });
  }

  /** `GET /tokens` */
  list(query: QueryOf<"/tokens", "get"> = {}): Promise<S["TokenPage"]> {
    return this.http.call({ method: "GET", path: "/tokens", query });
  }

  /** `DELETE /tokens/{id}` */
  async revoke(id: number): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/tokens/${id}` });
  }
}

/** `/scheduled…` */
export class ScheduledApi {
  constructor(private readonly http: HttpClient) {}

  /** `GET /scheduled` */
  list(query: QueryOf<"/scheduled", "get"> = {}): Promise<S["ScheduledPage"]> {
    return this.http.call({ method: "GET", path: "/scheduled", query });
  }

  /** `GET /scheduled/{id}` */
  get(id: number): Promise<S["ScheduledView"]> {
    return this.http.call({ method: "GET", path: `/scheduled/${id}` });
  }

  /** `DELETE /scheduled/{id}` */
  async cancel(id: number): Promise<void> {
    await this.http.call({ method: "DELETE", path: `/scheduled/${id}` });
  }
}
