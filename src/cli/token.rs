//! `herald token create | list | revoke`: API tokens straight in the
//! database, for the first admin token (and for scripts). On SQLite, stop
//! herald first: one process at a time opens the file.

use std::io::Write;

use crate::auth::api_token::{self, TokenSpec};
use crate::config::{DatabaseArg, TokenCommand, TokenCreateArgs};
use crate::domain::Timestamp;
use crate::storage::{self, Store, StoreOptions};

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(args).await,
        TokenCommand::List(db) => list(&db).await,
        TokenCommand::Revoke { id, database } => revoke(id, &database).await,
    }
}

async fn open(db: &DatabaseArg) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let options = StoreOptions {
        timeout: std::time::Duration::from_secs(5),
        max_connections: 1,
        sqlite_full_sync: true,
        sqlite_max_page_count: None,
    };
    storage::connect(&db.database_url, &options)
        .await
        .map_err(|e| {
            e.context(
                "herald token opens the database itself: on SQLite, stop herald first \
                 (or create tokens with POST /tokens and an admin token)",
            )
        })
}

async fn create(args: TokenCreateArgs) -> anyhow::Result<()> {
    let expires = args
        .expires
        .as_deref()
        .map(api_token::parse_expiry)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let store = open(&args.database).await?;
    let spec = TokenSpec {
        subject: args.subject,
        publish: args.publish,
        subscribe: args.subscribe,
        admin: args.admin,
        expires,
    };
    let (id, token) = api_token::issue(store.as_ref(), spec).await?;
    eprintln!("created API token {id}; it is shown only this once:");
    writeln!(std::io::stdout(), "{token}")?;
    Ok(())
}

async fn list(db: &DatabaseArg) -> anyhow::Result<()> {
    let store = open(db).await?;
    let mut out = std::io::stdout().lock();
    let mut after = 0;
    loop {
        let page = store.tokens(after, 1000).await?;
        for t in &page {
            let expires = t
                .expires_us
                .map_or_else(|| "never".to_owned(), |us| Timestamp(us).to_rfc3339());
            writeln!(
                out,
                "{}\tsubject={}\tpublish={}\tsubscribe={}\tadmin={}\texpires={expires}",
                t.id, t.subject, t.publish, t.subscribe, t.admin
            )?;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = last.id,
            _ => return Ok(()),
        }
    }
}

async fn revoke(id: i64, db: &DatabaseArg) -> anyhow::Result<()> {
    let store = open(db).await?;
    if !store.revoke_token(id, Timestamp::now()).await? {
        anyhow::bail!("no token {id} (or it is revoked already)");
    }
    eprintln!("revoked API token {id}; its open streams end within --auth-revocation-poll");
    Ok(())
}
