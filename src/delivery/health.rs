//! An endpoint's health after each attempt: the circuit breaker's
//! transitions (closed → open → half open → closed or open again),
//! "failing since", and auto-disable past `--webhook-disable-after`. Each
//! transition is a compare-and-set in storage, so one node makes it, and
//! that node publishes it on `$herald.subscription.*`.

use std::time::Instant;

use serde_json::json;

use super::{Deliverer, events};
use crate::domain::Timestamp;
use crate::storage::StoreError;
use crate::storage::webhooks::{CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, Subscription};

impl Deliverer {
    /// Moves an open circuit whose cool-down is over (or a half-open one
    /// whose probe's lease ran out) to half open until `lease_until`; true
    /// if this node won the probe (the time is checked in storage too, so a
    /// stale view of the circuit wins nothing).
    pub(super) async fn half_open(
        &self,
        sub: &Subscription,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let won = self
            .store
            .start_probe(sub.id, &sub.circuit, now, lease_until)
            .await?;
        if won && sub.circuit == CIRCUIT_OPEN {
            self.circuit_changed(sub, CIRCUIT_HALF_OPEN).await;
        }
        Ok(won)
    }

    /// Records what an attempt says of the endpoint's health; failures to
    /// record are logged (the next attempt tries again).
    pub(super) async fn after_attempt(&self, sub: &Subscription, succeeded: bool, probe: bool) {
        let noted = if succeeded {
            self.succeeded(sub, probe).await
        } else {
            self.failed(sub, probe).await
        };
        if let Err(e) = noted {
            tracing::warn!(subscription = sub.id, error = %e, "cannot record an endpoint's health");
        }
    }

    async fn succeeded(&self, sub: &Subscription, probe: bool) -> Result<(), StoreError> {
        // Cleared if storage had it as of the pass, or this node noted it
        // since (attempts of one claim share the pass's view).
        let noted = self.failing.lock().expect("poisoned").remove(&sub.id);
        if sub.failing_since_us.is_some() || noted {
            self.store.set_failing_since(sub.id, None).await?;
        }
        if !probe {
            self.breaker.record(sub.id, true, Instant::now());
        } else if self
            .store
            .set_circuit(sub.id, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED, None)
            .await?
        {
            self.breaker.reset(sub.id);
            self.circuit_changed(sub, CIRCUIT_CLOSED).await;
        }
        Ok(())
    }

    async fn failed(&self, sub: &Subscription, probe: bool) -> Result<(), StoreError> {
        let now = Timestamp::now();
        match sub.failing_since_us {
            None => {
                self.failing.lock().expect("poisoned").insert(sub.id);
                self.store.set_failing_since(sub.id, Some(now)).await?;
            }
            Some(since) => self.maybe_disable(sub, since, now).await?,
        }
        let cooldown = self.breaker.settings().cooldown;
        let until = Timestamp(now.0 + cooldown.as_micros() as i64);
        let from = if probe {
            CIRCUIT_HALF_OPEN
        } else if self.breaker.record(sub.id, false, Instant::now()) {
            CIRCUIT_CLOSED
        } else {
            return Ok(());
        };
        if self
            .store
            .set_circuit(sub.id, from, CIRCUIT_OPEN, Some(until))
            .await?
        {
            self.circuit_changed(sub, CIRCUIT_OPEN).await;
        }
        Ok(())
    }

    /// Pauses a subscription that has failed continuously for
    /// `--webhook-disable-after`; its pending deliveries stay.
    async fn maybe_disable(
        &self,
        sub: &Subscription,
        since: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let after = self.settings.disable_after;
        if after.is_zero() || now.0 - since < after.as_micros() as i64 {
            return Ok(());
        }
        let reason = format!(
            "every attempt has failed since {} (--webhook-disable-after {}); PATCH \
             {{\"paused\": false}} resumes it",
            Timestamp(since).to_rfc3339(),
            crate::domain::HumanDuration(after),
        );
        // Only if it still fails since then: a success on any node since
        // the pass read `since` cleared it, and the pause is not made.
        let cutoff = Timestamp(now.0 - after.as_micros() as i64);
        if self.store.disable(sub.id, &reason, cutoff, now).await? {
            tracing::warn!(subscription = sub.id, url = %sub.url, "webhook disabled: {reason}");
            self.changes.bump();
            metrics::counter!(crate::telemetry::WEBHOOK_DISABLED).increment(1);
            let event = json!({
                "subscription_id": sub.id, "url": sub.url, "topic": sub.topic,
                "reason": reason, "failing_since": Timestamp(since).to_rfc3339(),
            });
            events::emit(&self.publisher, events::SUBSCRIPTION_DISABLED, event).await;
        }
        Ok(())
    }

    async fn circuit_changed(&self, sub: &Subscription, to: &'static str) {
        tracing::info!(subscription = sub.id, url = %sub.url, circuit = to, "webhook circuit changed");
        metrics::counter!(crate::telemetry::WEBHOOK_CIRCUIT, "to" => to).increment(1);
        let event = json!({
            "subscription_id": sub.id, "url": sub.url, "topic": sub.topic, "circuit": to,
        });
        events::emit(&self.publisher, events::SUBSCRIPTION_CIRCUIT, event).await;
    }
}
