//! Tokens for the access-control tests: JWTs signed with the test keys in
//! `tests/fixtures/auth`, and a few forged ones.

#![allow(dead_code)]

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The HS256 secret the tests give herald.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// The audience the tests give herald.
pub const AUDIENCE: &str = "herald-test";

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Flags that turn on JWTs (HS256, RS256, ES256, EdDSA) with the test
/// audience.
pub fn flags() -> Vec<String> {
    vec![
        "--auth-jwt-secret".into(),
        SECRET.into(),
        "--auth-jwt-key".into(),
        fixture("rsa_public.pem"),
        "--auth-jwt-key".into(),
        format!("{},{}", fixture("ec_public.pem"), fixture("ed_public.pem")),
        "--auth-jwt-audience".into(),
        AUDIENCE.into(),
    ]
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims with the test audience, an hour to live, and these scopes.
pub fn claims(sub: &str, herald: Value) -> Value {
    json!({"sub": sub, "aud": AUDIENCE, "exp": now() + 3600, "herald": herald})
}

/// HS256 with the test secret.
pub fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Signed with a test private key (`rsa`, `ec` or `ed`).
pub fn signed(alg: Algorithm, key: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(&format!("{key}_private.pem"))).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `alg: none`, no signature.
pub fn alg_none(claims: &Value) -> String {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", b64(claims.to_string().as_bytes()))
}

/// HS256 whose HMAC key is the server's RSA public key (PEM bytes): the
/// classic algorithm-confusion forgery.
pub fn confused(claims: &Value) -> String {
    let public = std::fs::read(fixture("rsa_public.pem")).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap()
}

/// A valid token with its signature's last characters changed.
pub fn bad_signature(claims: &Value) -> String {
    // Not the last character: its low bits are padding.
    let mut t = hs256(claims).into_bytes();
    let i = t.len() - 10;
    t[i] = if t[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(t).unwrap()
}
