//! LISTEN on one channel of Postgres notifications, for as long as the
//! stream is polled: a lost connection is made again (after a second), and
//! a [`Notice::Resync`] says that notices may have been missed meanwhile
//! (one also comes first, for whatever committed before LISTEN took).

use std::time::Duration;

use futures_util::stream::BoxStream;
use sqlx::postgres::{PgListener, PgPool};

use crate::storage::Notice;

pub(super) fn listen(pool: PgPool, channel: &'static str) -> BoxStream<'static, Notice> {
    Box::pin(async_stream::stream! {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(channel).await {
                    Ok(()) => {
                        yield Notice::Resync;
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => yield Notice::Payload(n.payload().to_owned()),
                                // The connection was lost and is made again on
                                // the next call; notices sent meanwhile are gone.
                                Ok(None) => yield Notice::Resync,
                                Err(e) => {
                                    tracing::warn!(error = %e, channel, "notifications interrupted");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, channel, "LISTEN failed"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, channel, "cannot open a notification connection")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
