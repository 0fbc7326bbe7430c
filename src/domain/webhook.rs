//! Webhook rules that need no I/O: Standard Webhooks secrets and signatures,
//! and the retry schedule.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A signing secret, `whsec_<base64 key>` as Standard Webhooks writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a secret is `whsec_` followed by base64 of 24 to 64 random bytes")]
pub struct SecretError;

impl Secret {
    const PREFIX: &'static str = "whsec_";

    /// A new random 32-byte secret.
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        Self::parse(&format!("{}{}", Self::PREFIX, B64.encode(key))).expect("valid by construction")
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(Self::PREFIX).ok_or(SecretError)?;
        let key = B64.decode(encoded).map_err(|_| SecretError)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError);
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of
    /// "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The retry bounds of a subscription.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before the next attempt after `failures` failed attempts:
    /// exponential from `min` (doubling per failure), with jitter (a random
    /// point in the upper half), never below `min` or above `max`. A
    /// `Retry-After` from the endpoint is honoured within the same bounds.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .min
            .saturating_mul(
                1u32.checked_shl(failures.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        let jittered = exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        jittered
            .max(retry_after.unwrap_or_default())
            .clamp(self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_validated_and_generated() {
        assert!(Secret::parse("whsec_short").is_err());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_!!!notbase64!!!").is_err());
        let s = Secret::generate();
        assert!(s.as_str().starts_with("whsec_"));
        assert_eq!(Secret::parse(s.as_str()).unwrap(), s);
        assert_ne!(Secret::generate(), s);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_in_bounds() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, None, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, None, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(10, None, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(200, None, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, None, 0.0), Duration::from_millis(100));
        // Retry-After wins when longer, within the bounds.
        assert_eq!(
            b.delay(1, Some(Duration::from_millis(700)), 1.0),
            Duration::from_millis(700)
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(60)), 1.0),
            Duration::from_secs(1)
        );
    }
}
