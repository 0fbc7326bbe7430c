//! `auth`: what access control costs a publish. Single publishes with an
//! HS256 JWT, an RS256 JWT and an API token, against no access control, in
//! alternating rounds of the same run, each side on a fresh server;
//! medians per side. Verified tokens are cached, so the figures show the
//! cache, not one RSA verification per request.

use crate::stats::median;
use std::time::Duration;

use herald::auth::api_token::{self, TokenSpec};
use herald::storage::{self, StoreOptions};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::Ctx;
use crate::load::{self, Kind};
use crate::server::{BenchDb, Server};
use crate::stats::Row;

const SECRET: &str = "herald-bench-secret-of-at-least-32-bytes";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A JWT that may publish to `bench.**` and is an admin (so the check
/// after the run may list topics).
fn jwt(alg: Algorithm) -> anyhow::Result<String> {
    let claims = json!({"sub": "bench", "exp": jsonwebtoken::get_current_timestamp() + 3600,
        "herald": {"publish": ["bench.**"], "admin": true}});
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem"))?)?,
        _ => EncodingKey::from_secret(SECRET.as_bytes()),
    };
    Ok(jsonwebtoken::encode(&Header::new(alg), &claims, &key)?)
}

/// An admin API token, written to the database before herald starts.
async fn api_token(db: &BenchDb) -> anyhow::Result<String> {
    let options = StoreOptions {
        timeout: Duration::from_secs(5),
        max_connections: 1,
        sqlite_full_sync: true,
        sqlite_max_page_count: None,
    };
    let store = storage::connect(&db.url, &options).await?;
    let spec = TokenSpec {
        publish: vec!["bench.**".into()],
        admin: true,
        ..TokenSpec::default()
    };
    let (_, token) = api_token::issue(store.as_ref(), spec).await?;
    Ok(token)
}

/// One side: its name, its flags and how it gets its token.
struct Side {
    name: &'static str,
    flags: Vec<String>,
    token: Option<Algorithm>,
    api_token: bool,
}

fn sides() -> Vec<Side> {
    let none = Side {
        name: "no access control",
        flags: vec![],
        token: None,
        api_token: false,
    };
    let hs = Side {
        name: "HS256 JWT",
        flags: vec!["--auth-jwt-secret".into(), SECRET.into()],
        token: Some(Algorithm::HS256),
        api_token: false,
    };
    let rs = Side {
        name: "RS256 JWT",
        flags: vec!["--auth-jwt-key".into(), fixture("rsa_public.pem")],
        token: Some(Algorithm::RS256),
        api_token: false,
    };
    let api = Side {
        name: "API token",
        flags: vec!["--anonymous".into(), "none".into()],
        token: None,
        api_token: true,
    };
    vec![none, hs, rs, api]
}

pub async fn auth(cx: &mut Ctx) -> anyhow::Result<()> {
    anyhow::ensure!(
        cx.args.url.is_none(),
        "auth starts its own servers; drop --url"
    );
    let rounds = if cx.args.smoke { 1 } else { 5 };
    let (d, c, b) = (cx.secs(), cx.args.clients, cx.backend);
    let sides = sides();
    let mut rates = vec![Vec::new(); sides.len()];
    for _ in 0..rounds {
        for (i, side) in sides.iter().enumerate() {
            let db = BenchDb::fresh(cx.args.database_url.as_deref()).await?;
            let token = match (side.token, side.api_token) {
                (Some(alg), _) => Some(jwt(alg)?),
                (None, true) => Some(api_token(&db).await?),
                (None, false) => None,
            };
            let flags: Vec<&str> = side.flags.iter().map(String::as_str).collect();
            let server = Server::start(&db, &flags).await?;
            let kind = Kind::Publish { topics: 1 };
            let mut run = load::closed_loop_as(&server.url, kind, c, d, token.clone()).await?;
            load::verify_publishes_as(&server.url, &mut run.ids, token.as_deref()).await?;
            rates[i].push(run.per_second());
            server.stop().await;
            db.cleanup().await;
        }
    }
    let none = median(rates[0].clone());
    for (i, side) in sides.iter().enumerate().skip(1) {
        let m = median(rates[i].clone());
        cx.rows.push(
            Row::new(
                &format!("publish with {}", side.name),
                b,
                "throughput",
                m,
                "msgs/s",
            )
            .baseline("no access control", none)
            .target("≥ 0.9 × no access control")
            .note(format!(
                "{c} clients; {rounds} alternating rounds; {:?} against {:?}; ratio {:.3}",
                rates[i].iter().map(|x| x.round()).collect::<Vec<_>>(),
                rates[0].iter().map(|x| x.round()).collect::<Vec<_>>(),
                m / none
            )),
        );
    }
    Ok(())
}
