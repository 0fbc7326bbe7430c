//! `herald publish TOPIC [MESSAGE|-]`: one `POST /topics/{topic}`, its
//! answer printed as JSON.

use std::io::Read;

use clap::Args;

use super::{CliError, Server};

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub server: Server,
    /// The topic to publish to.
    pub topic: String,
    /// The message; `-` or nothing reads it from stdin.
    pub message: Option<String>,
    /// The SSE event type (default `message`).
    #[arg(long)]
    pub event: Option<String>,
    /// Time to live (`90s`, `15m`, `24h`): undelivered after that.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Priority, `1..5` or `min low default high max`.
    #[arg(long)]
    pub priority: Option<String>,
    /// Ordering key.
    #[arg(long)]
    pub key: Option<String>,
    /// Deliver after this long (`10m`).
    #[arg(long, conflicts_with = "at")]
    pub delay: Option<String>,
    /// Deliver at this RFC 3339 time.
    #[arg(long)]
    pub at: Option<String>,
    /// A repeat with the same key is answered with the first result and
    /// stores nothing.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The message's content type (`application/json` stores it as JSON).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Keep the final newline of a message read from stdin (by default one
    /// trailing `\n` or `\r\n` is dropped, as `echo hi | …` means "hi").
    #[arg(long)]
    pub keep_newline: bool,
}

/// Publishes and prints herald's answer (`{"id", "topic", "seq", "time"}`).
pub async fn run(args: PublishArgs) -> Result<(), CliError> {
    let base = args.server.base()?;
    let body = match args.message.as_deref() {
        Some(text) if text != "-" => text.as_bytes().to_vec(),
        _ => {
            let mut read = read_stdin()?;
            if !args.keep_newline {
                trim_final_newline(&mut read);
            }
            read
        }
    };
    let client = args.server.client()?;
    let mut url = url::Url::parse(&format!("{base}/topics/"))
        .map_err(|e| CliError::Usage(format!("invalid --url: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| CliError::Usage("invalid --url: it cannot take a path".into()))?
        .pop_if_empty()
        .push(&args.topic);
    let query = [
        ("event", &args.event),
        ("ttl", &args.ttl),
        ("priority", &args.priority),
        ("key", &args.key),
        ("delay", &args.delay),
        ("at", &args.at),
    ];
    for (name, value) in query {
        if let Some(value) = value {
            url.query_pairs_mut().append_pair(name, value);
        }
    }
    let mut req = args.server.authorize(client.post(url).body(body));
    if let Some(key) = &args.idempotency_key {
        req = req.header("idempotency-key", key);
    }
    if let Some(ct) = &args.content_type {
        req = req.header("content-type", ct);
    }
    let response = req
        .send()
        .await
        .map_err(|e| super::unreachable(&base, &e))?;
    if !response.status().is_success() {
        return Err(super::refused(response).await);
    }
    let answer = response
        .text()
        .await
        .map_err(|e| super::unreachable(&base, &e))?;
    println!("{}", answer.trim_end());
    Ok(())
}

/// Drops one trailing `\n` (or `\r\n`), as `ntfy publish` does.
fn trim_final_newline(body: &mut Vec<u8>) {
    if body.last() == Some(&b'\n') {
        body.pop();
        if body.last() == Some(&b'\r') {
            body.pop();
        }
    }
}

fn read_stdin() -> Result<Vec<u8>, CliError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no message: give it after the topic, or pipe it in with `-`".into(),
        ));
    }
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| CliError::Usage(format!("cannot read the message from stdin: {e}")))?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::trim_final_newline;

    #[test]
    fn one_final_newline_goes_and_the_rest_stays() {
        for (given, kept) in [
            (&b"hi\n"[..], &b"hi"[..]),
            (b"hi\r\n", b"hi"),
            (b"hi\n\n", b"hi\n"),
            (b"hi", b"hi"),
            (b"", b""),
        ] {
            let mut body = given.to_vec();
            trim_final_newline(&mut body);
            assert_eq!(body, kept);
        }
    }
}
