//! JWT verification: HS256 with a shared secret, RS256/ES256/EdDSA with
//! PEM public keys. The algorithm is chosen by the configured keys, never
//! by the token: `alg: none` and a token that names an algorithm of
//! another key family (an HS256 token "signed" with the RSA public key)
//! are refused before any signature check.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::Grants;

/// Verified tokens remembered at most; past it, the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

/// Why a JWT was refused. The text never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT herald can read")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted here")]
    Algorithm(String),
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's audience (aud) is not this server's")]
    Audience,
    #[error("the token's herald claim is invalid: {0}")]
    Scopes(String),
}

/// The claims herald reads; `exp`, `nbf` and `aud` are checked by the
/// validation too.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    #[serde(default)]
    herald: Scopes,
}

/// The `herald` claim (and the same fields of API tokens).
#[derive(Debug, Default, Deserialize)]
struct Scopes {
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// A verified token: who, what it may do, and until when (unix seconds).
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: Option<String>,
    pub grants: Arc<Grants>,
    pub expires: Option<i64>,
    not_before: Option<i64>,
}

/// The configured keys, and the tokens verified recently.
pub struct Verifier {
    keys: Vec<(Family, DecodingKey)>,
    audience: Option<String>,
    cache: Mutex<HashMap<Box<str>, Verified>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Family {
    fn of(alg: Algorithm) -> Option<Family> {
        use Algorithm::*;
        match alg {
            HS256 | HS384 | HS512 => Some(Family::Hmac),
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
            ES256 | ES384 => Some(Family::Ec),
            EdDSA => Some(Family::Ed),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl Verifier {
    /// From `--auth-jwt-secret` and `--auth-jwt-key` files; `None` when
    /// neither is given.
    pub fn new(
        secret: Option<&str>,
        key_files: &[std::path::PathBuf],
        audience: Option<String>,
    ) -> anyhow::Result<Option<Self>> {
        let mut keys = Vec::new();
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            if secret.len() < 32 {
                anyhow::bail!(
                    "--auth-jwt-secret must be at least 32 bytes long (HS256 keys shorter than the hash are easy to guess)"
                );
            }
            keys.push((Family::Hmac, DecodingKey::from_secret(secret.as_bytes())));
        }
        for file in key_files {
            keys.push(read_key(file)?);
        }
        Ok((!keys.is_empty()).then(|| Verifier {
            keys,
            audience,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Verifies `token`, from the cache when it was verified before.
    pub fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        if let Some(hit) = self.cache.lock().expect("jwt cache").get(token).cloned() {
            return check_times(hit, now);
        }
        let verified = self.verify_uncached(token)?;
        let mut cache = self.cache.lock().expect("jwt cache");
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, v| v.expires.is_none_or(|e| e > now));
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(token.into(), verified.clone());
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str) -> Result<Verified, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => {
                JwtError::Algorithm("unknown".into())
            }
            _ => JwtError::Malformed,
        })?;
        let family = Family::of(header.alg)
            .ok_or_else(|| JwtError::Algorithm(format!("{:?}", header.alg)))?;
        // RFC 7515 §4.1.11: extensions marked critical must be understood,
        // and herald understands none.
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(JwtError::Malformed);
        }
        let mut candidates = self.keys.iter().filter(|(f, _)| *f == family).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
        }
        let validation = self.validation(header.alg);
        let mut last = JwtError::Signature;
        for (_, key) in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return verified(data.claims),
                Err(e) => last = sort(e),
            }
            if !matches!(last, JwtError::Signature) {
                break;
            }
        }
        Err(last)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 0;
        v.validate_nbf = true;
        // `exp` is checked when present; tokens without one do not expire.
        v.required_spec_claims.clear();
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        v
    }
}

fn verified(claims: Claims) -> Result<Verified, JwtError> {
    let s = claims.herald;
    let grants = Grants::expand(&s.publish, &s.subscribe, s.admin, claims.sub.as_deref())
        .map_err(|e| JwtError::Scopes(e.to_string()))?;
    Ok(Verified {
        subject: claims.sub,
        grants: Arc::new(grants),
        expires: claims.exp.map(|e| e as i64),
        not_before: claims.nbf.map(|n| n as i64),
    })
}

fn check_times(v: Verified, now: i64) -> Result<Verified, JwtError> {
    if v.expires.is_some_and(|e| now >= e) {
        return Err(JwtError::Expired);
    }
    if v.not_before.is_some_and(|n| now < n) {
        return Err(JwtError::NotYetValid);
    }
    Ok(v)
}

fn sort(e: jsonwebtoken::errors::Error) -> JwtError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => JwtError::Expired,
        K::ImmatureSignature => JwtError::NotYetValid,
        K::InvalidAudience | K::MissingRequiredClaim(_) => JwtError::Audience,
        K::InvalidSignature => JwtError::Signature,
        K::InvalidAlgorithm => JwtError::Algorithm("for this key".into()),
        _ => JwtError::Malformed,
    }
}

/// A PEM public key: RSA, EC (P-256/P-384) or Ed25519.
fn read_key(file: &Path) -> anyhow::Result<(Family, DecodingKey)> {
    let pem = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("cannot read --auth-jwt-key {}: {e}", file.display()))?;
    if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((Family::Rsa, k));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
        return Ok((Family::Ec, k));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
        return Ok((Family::Ed, k));
    }
    anyhow::bail!(
        "--auth-jwt-key {}: not a PEM public key herald can use (RSA, EC P-256/P-384 or Ed25519)",
        file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn fixture(name: &str) -> std::path::PathBuf {
        format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR")).into()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "a", "exp": jsonwebtoken::get_current_timestamp() + 60,
            "herald": {"subscribe": ["x.**"]}})
    }

    /// Only an RSA key: the forgeries that target such servers fail, and a
    /// real RS256 token passes (and is then served from the cache).
    #[test]
    fn an_rsa_only_server_refuses_none_and_key_confusion() {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let v = Verifier::new(None, &[fixture("rsa_public.pem")], None)
            .unwrap()
            .unwrap();
        let public = std::fs::read(fixture("rsa_public.pem")).unwrap();
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(&public),
        )
        .unwrap();
        assert!(matches!(v.verify(&confused), Err(JwtError::Algorithm(_))));
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(&claims().to_string())
        );
        assert!(v.verify(&none).is_err());
        let private = std::fs::read(fixture("rsa_private.pem")).unwrap();
        let real = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims(),
            &EncodingKey::from_rsa_pem(&private).unwrap(),
        )
        .unwrap();
        let ok = v.verify(&real).unwrap();
        assert_eq!(ok.subject.as_deref(), Some("a"));
        assert!(v.cache.lock().unwrap().contains_key(real.as_str()));
        assert!(v.verify(&real).is_ok());
    }

    #[test]
    fn a_critical_extension_herald_does_not_know_is_refused() {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let secret = "a-secret-of-at-least-thirty-two-bytes!";
        let v = Verifier::new(Some(secret), &[], None).unwrap().unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["exp-ext".into()]);
        let key = EncodingKey::from_secret(secret.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
        assert!(matches!(v.verify(&token), Err(JwtError::Malformed)));
        let plain = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &key).unwrap();
        assert!(v.verify(&plain).is_ok());
    }

    #[test]
    fn a_short_secret_is_refused_at_start_up() {
        let e = Verifier::new(Some("short"), &[], None).err().unwrap();
        assert!(e.to_string().contains("32 bytes"), "{e}");
    }
}
