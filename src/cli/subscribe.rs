//! `herald subscribe TOPIC|PATTERN…`: one SSE stream (`GET /events`),
//! each message printed as it arrives. A broken connection is retried
//! with backoff and resumed with `Last-Event-ID` from the last message
//! printed, so nothing is printed twice and nothing is skipped; when herald
//! no longer has what was missed, its `gap` event is printed on stderr.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;

use super::{CliError, Server};

/// The first wait before reconnecting, doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub server: Server,
    /// Topics or patterns (`orders`, `orders.*`, `orders.**`).
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Only messages this expression selects, e.g. `data.total > 100`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Start after this message id, or from the `earliest` one retained
    /// (default: only new messages).
    #[arg(long, value_parser = since)]
    pub since: Option<String>,
    /// Print each message's whole envelope (`id`, `topic`, `seq`, `time`,
    /// `event`, `data`) as one JSON line instead of its payload.
    #[arg(long)]
    pub json: bool,
}

fn since(s: &str) -> Result<String, String> {
    if s == "earliest" || s.parse::<u64>().is_ok() {
        Ok(s.to_owned())
    } else {
        Err("expected a message id (a number) or `earliest`".into())
    }
}

/// Why a stream ended.
enum Ended {
    /// The connection closed or broke: reconnect.
    Retry(String),
    /// stdout is closed (`| head`): stop quietly.
    OutputClosed,
}

/// Streams until stdout closes or herald refuses the stream.
pub async fn run(args: SubscribeArgs) -> Result<(), CliError> {
    let base = args.server.base()?;
    let client = args.server.client()?;
    let mut cursor = args.since.clone();
    let mut wait = FIRST_RETRY;
    let mut connected = false;
    loop {
        let why = match open(&client, &args, &base, cursor.as_deref()).await {
            Ok(response) => {
                connected = true;
                wait = FIRST_RETRY;
                match read(response, args.json, &mut cursor).await {
                    Ended::OutputClosed => return Ok(()),
                    Ended::Retry(why) => why,
                }
            }
            // Never connected: a wrong URL or a server that is down is
            // reported, not retried forever.
            Err(e @ CliError::Unreachable(_)) if !connected => return Err(e),
            Err(e @ CliError::Refused { status, .. }) if !retryable(status) => return Err(e),
            Err(e) => e.to_string(),
        };
        let from = cursor.as_deref().unwrap_or("now");
        eprintln!("herald: {why}; reconnecting in {wait:?} (resuming after {from})");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
    }
}

/// Statuses worth another attempt: rate limits and unavailability.
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 502 | 503 | 504)
}

/// Opens the stream after `cursor`.
async fn open(
    client: &reqwest::Client,
    args: &SubscribeArgs,
    base: &str,
    cursor: Option<&str>,
) -> Result<reqwest::Response, CliError> {
    let mut url = url::Url::parse(&format!("{base}/events"))
        .map_err(|e| CliError::Usage(format!("invalid --url: {e}")))?;
    for topic in &args.topics {
        url.query_pairs_mut().append_pair("topic", topic);
    }
    if let Some(filter) = &args.filter {
        url.query_pairs_mut().append_pair("filter", filter);
    }
    let mut req = client.get(url).header("accept", "text/event-stream");
    if let Some(cursor) = cursor {
        req = req.header("last-event-id", cursor);
    }
    let response = args
        .server
        .authorize(req)
        .send()
        .await
        .map_err(|e| super::unreachable(base, &e))?;
    if !response.status().is_success() {
        return Err(super::refused(response).await);
    }
    Ok(response)
}

/// Prints every message of one connection, moving `cursor` past each.
async fn read(response: reqwest::Response, json: bool, cursor: &mut Option<String>) -> Ended {
    let mut events = response.bytes_stream().eventsource();
    let mut out = std::io::stdout().lock();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => return Ended::Retry(format!("the stream broke: {e}")),
        };
        if event.event == "gap" {
            eprintln!("herald: {}", gap_notice(&event.data));
        } else if write_message(&mut out, &event, json).is_err() {
            return Ended::OutputClosed;
        }
        if !event.id.is_empty() {
            *cursor = Some(event.id);
        }
    }
    Ended::Retry("herald closed the stream".into())
}

/// Writes one message: its payload (text as it is, JSON on one line), or
/// with `json` its whole envelope.
fn write_message(out: &mut impl Write, event: &Event, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", event.data)?;
    } else {
        let envelope: serde_json::Value =
            serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null);
        match envelope.get("data") {
            // A text payload's own final newline (`echo … | herald
            // publish`) is not doubled.
            Some(serde_json::Value::String(text)) => {
                writeln!(out, "{}", text.strip_suffix('\n').unwrap_or(text))?
            }
            Some(value) => writeln!(out, "{value}")?,
            None => writeln!(out, "{}", event.data)?,
        }
    }
    out.flush()
}

/// A gap, in words: what was lost and where the stream goes on.
fn gap_notice(data: &str) -> String {
    let gap: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    let after = &gap["after"];
    let oldest = &gap["oldest_available"];
    format!(
        "GAP: messages after {after} are no longer retained (the oldest still available is {oldest}); some were missed: {data}"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_takes_an_id_or_earliest() {
        assert!(super::since("42").is_ok());
        assert!(super::since("earliest").is_ok());
        assert!(super::since("latest").is_err());
    }
}
