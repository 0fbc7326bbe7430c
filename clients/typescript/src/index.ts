/** herald-client: the official TypeScript client of herald. See docs/clients.md. */
export { Herald, type HeraldOptions } from "./herald.js";
export { HeraldError, GapError, Retry, MALFORMED, type Gap, type GapTopic, type HeraldErrorInit } from "./errors.js";
export { Subscription, type SubscribeOptions, type SubscriptionItem, type SubscriptionState } from "./subscription.js";
export type { Consumer, ConsumeOptions, Handler, PulledMessage } from "./consumer.js";
export type { ImmediateOptions, PublishOptions, PublishResult, PublishBatchResult, Published, PublishedBatch, Replayed } from "./publish.js";
export type { Envelope, PresenceEvent } from "./frames.js";
export type { Clock, BackoffOptions } from "./backoff.js";
export { backoffDelay, BACKOFF_BASE_MS, BACKOFF_CAP_MS, HEALTHY_RESET_MS } from "./backoff.js";
export type { SeekTarget } from "./resources.js";
export { TopicsApi, SubscriptionsApi, DeadLettersApi, TokensApi, ScheduledApi } from "./resources.js";
export type { components, paths } from "./generated.js";
