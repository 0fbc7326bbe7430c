//! Criterion benchmarks: what access control adds to one request. A
//! verified token is cached, so a request pays a cache hit; an RS256
//! verification without the cache is measured beside it, for scale.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::auth::api_token::{self, TokenSpec};
use herald::auth::{Anonymous, Auth, AuthSettings};
use herald::storage::{self, StoreOptions};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

const SECRET: &str = "criterion-secret-of-at-least-32-bytes!!";

fn fixture(name: &str) -> std::path::PathBuf {
    format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR")).into()
}

fn claims() -> serde_json::Value {
    serde_json::json!({"sub": "bench", "exp": jsonwebtoken::get_current_timestamp() + 3600,
        "herald": {"publish": ["orders.**"], "subscribe": ["orders.**"]}})
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let options = StoreOptions {
        timeout: Duration::from_secs(5),
        max_connections: 2,
        sqlite_full_sync: true,
        sqlite_max_page_count: None,
    };
    let store = rt.block_on(storage::connect(&url, &options)).unwrap();
    let settings = AuthSettings {
        jwt_secret: Some(SECRET.into()),
        jwt_keys: vec![fixture("rsa_public.pem")],
        anonymous: Some(Anonymous::None),
        ..AuthSettings::default()
    };
    let auth = Arc::new(Auth::new(&settings, store.clone()).unwrap());
    let ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let private = std::fs::read(fixture("rsa_private.pem")).unwrap();
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    let spec = TokenSpec {
        publish: vec!["orders.**".into()],
        ..TokenSpec::default()
    };
    let (_, api) = rt.block_on(api_token::issue(store.as_ref(), spec)).unwrap();
    let caller = |token: Option<&str>| rt.block_on(auth.caller(token, ip)).unwrap();

    c.bench_function("caller_anonymous", |b| b.iter(|| caller(black_box(None))));
    for (name, token) in [
        ("caller_hs256_cached", &hs),
        ("caller_rs256_cached", &rs),
        ("caller_api_token_cached", &api),
    ] {
        caller(Some(token));
        c.bench_function(name, |b| b.iter(|| caller(black_box(Some(token)))));
    }
    let public = std::fs::read(fixture("rsa_public.pem")).unwrap();
    let key = DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    c.bench_function("rs256_verify_uncached", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&rs), &key, &validation).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
