//! One webhook attempt from start to record: drop it if its message has
//! expired, `POST` it, then record the outcome in the ledger (delivered,
//! rescheduled with backoff, or buried), hand its line to the attempt log
//! (see [`super::attempt_log`]), and tell the endpoint's health (see
//! [`super::health`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client::Answer;
use super::{Deliverer, events};
use crate::domain::webhook::Backoff;
use crate::domain::{Message, Timestamp};
use crate::storage::webhooks::{AttemptLog, Due, Subscription};

impl Deliverer {
    /// Attempts one delivery and records what came of it. `probe`: the
    /// half-open circuit's one attempt.
    pub(super) async fn attempt(
        &self,
        sub: &Subscription,
        due: Due,
        message: Option<Arc<Message>>,
        probe: bool,
    ) {
        if message
            .as_ref()
            .is_some_and(|m| m.is_expired(Timestamp::now()))
        {
            // Expired before it could be delivered: dropped, never sent,
            // counted, and not a dead letter.
            metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "expired")
                .increment(1);
            if let Err(e) = self.store.expire(&due).await {
                tracing::warn!(subscription = sub.id, position = due.position, error = %e,
                    "cannot drop an expired delivery; it is looked at again when its lease ends");
            }
            return;
        }
        // The message, or the copy of its envelope that a redriven dead
        // letter brought back once retention had removed the message.
        let body: Option<Bytes> = message
            .as_ref()
            .map(|m| m.envelope())
            .or_else(|| due.envelope.clone().map(Bytes::from));
        let answer = match &body {
            Some(b) => self.client.attempt(sub, due.position, b.clone()).await,
            None => Answer::failed("the message is no longer retained".into(), Instant::now()),
        };
        let now = Timestamp::now();
        if let Some(logger) = &self.attempt_log {
            logger.log(AttemptLog {
                subscription_id: sub.id,
                position: due.position,
                time: now,
                status: answer.status.map(|s| i32::from(s.as_u16())),
                error: answer.error.clone(),
                duration_ms: answer.duration.as_millis() as i64,
                response: answer.response.clone(),
            });
        }
        let retained = body.is_some();
        let final_failure = !retained
            || answer.abort
            || (due.attempts + 1) as u32 >= sub.max_attempts.max(1) as u32;
        let recorded = match (answer.succeeded(), final_failure) {
            (true, _) => {
                metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "success")
                    .increment(1);
                self.store.delivered(&due).await
            }
            (false, true) => self.bury(sub, &due, &answer, body, now).await,
            (false, false) => {
                metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "retry")
                    .increment(1);
                let backoff = Backoff {
                    min: Duration::from_millis(sub.min_backoff_ms.max(0) as u64),
                    max: Duration::from_millis(sub.max_backoff_ms.max(0) as u64),
                };
                let failures = (due.attempts + 1) as u32;
                let delay = backoff.delay(failures, answer.retry_after, rand::random());
                let next = Timestamp(now.0 + delay.as_micros() as i64);
                self.store.failed(&due, &answer.failure(), next, now).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(subscription = sub.id, position = due.position, error = %e,
                "cannot record a webhook outcome; the delivery is retried when its lease ends");
        }
        // A message herald no longer has says nothing of the endpoint.
        if retained {
            self.after_attempt(sub, answer.succeeded(), probe).await;
        }
    }

    /// Moves a delivery to the dead letters (its last attempt failed, or
    /// the endpoint said `webhook-delivery: abort-message`), and says so on
    /// `$herald.delivery.dead_lettered`.
    async fn bury(
        &self,
        sub: &Subscription,
        due: &Due,
        answer: &Answer,
        body: Option<Bytes>,
        now: Timestamp,
    ) -> Result<(), crate::storage::StoreError> {
        let reason = match (&body, answer.abort) {
            (None, _) => "retention",
            (Some(_), true) => "aborted",
            (Some(_), false) => "max_attempts",
        };
        metrics::counter!(crate::telemetry::WEBHOOK_ATTEMPTS, "outcome" => "dead_letter")
            .increment(1);
        let envelope = body.as_deref().and_then(|b| std::str::from_utf8(b).ok());
        let buried = self
            .store
            .bury(due, &answer.failure(), envelope, reason, now)
            .await?;
        if let Some(id) = buried {
            let event = events::DeadLettered {
                subscription_id: sub.id,
                dead_letter_id: id,
                message_id: due.position,
                topic: &due.topic,
                reason,
                attempts: due.attempts + 1,
                status: answer.status.map(|s| s.as_u16()),
                error: answer.error.as_deref(),
            };
            events::dead_lettered(&self.publisher, &event).await;
        }
        Ok(())
    }
}
