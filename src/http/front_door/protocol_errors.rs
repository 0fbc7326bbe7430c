//! hyper's own answers to requests it cannot parse, as problem+json.
//!
//! hyper answers a malformed request itself, before herald's service sees
//! it: `400` (a garbage request line, an invalid header name or value, a
//! bad or duplicate `Content-Length`), `414` (a URI longer than its read
//! buffer) and `431` (a head over `--http-max-header-bytes`, or more than
//! 100 header fields), each with an empty body, then closes the
//! connection. hyper offers no hook for that answer, so this socket
//! wrapper recognises it on its way out (a `400`, `414` or `431` head
//! whose only fields are `connection: close`, `content-length: 0` and
//! `date`, where every such answer of herald's is problem+json with its
//! `content-type`) and writes a problem document with the same status in
//! its place. The parser stays hyper's.
//!
//! An HTTP/2 connection preface on a plain connection (h2c) is closed
//! without an answer: herald speaks HTTP/2 only over TLS, chosen through
//! ALPN, and an HTTP/2 client could not read an HTTP/1.1 answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's socket that rewrites hyper's empty error answers.
pub struct ProblemAnswers<S> {
    inner: S,
    max_head: usize,
    state: State,
}

enum State {
    /// No error answer seen yet.
    Watching,
    /// The problem answer being written in place of hyper's: how much of
    /// it is written, and how many of hyper's bytes it stands for.
    Replacing {
        answer: Vec<u8>,
        written: usize,
        stands_for: usize,
    },
    /// Replaced; hyper writes nothing more, and should it, its bytes go
    /// through as they are.
    Done,
}

impl<S> ProblemAnswers<S> {
    pub fn new(inner: S, max_head: usize) -> Self {
        Self {
            inner,
            max_head,
            state: State::Watching,
        }
    }
}

/// The problem answer for hyper's `head`, if that is what it is.
fn replacement(head: &[u8], max_head: usize) -> Option<Vec<u8>> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if end != head.len() {
        return None; // a body follows: not hyper's empty answer
    }
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head[..end - 4].split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => {}
            "connection" if value.eq_ignore_ascii_case("close") => {}
            "date" => date = Some(value),
            _ => return None,
        }
    }
    let (kind, title, detail) = match status {
        "400" => (
            "malformed-request",
            "Malformed request",
            "the request could not be read as HTTP/1.1: its request line, a header name or value, or its Content-Length is malformed".to_owned(),
        ),
        "414" => (
            "uri-too-long",
            "URI too long",
            format!("the request URI does not fit in herald's {max_head}-byte request head (--http-max-header-bytes)"),
        ),
        "431" => (
            "headers-too-large",
            "Request header fields too large",
            format!("the request head is larger than {max_head} bytes (--http-max-header-bytes) or has more than 100 header fields"),
        ),
        _ => return None,
    };
    let body = serde_json::json!({
        "type": format!("urn:herald:problem:{kind}"),
        "title": title,
        "status": status.parse::<u16>().ok()?,
        "detail": detail,
    })
    .to_string()
        + "\n";
    let date = date.map(|d| format!("date: {d}\r\n")).unwrap_or_default();
    let reason = title;
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n{date}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> ProblemAnswers<S> {
    /// Writes `buf`, or the problem answer that replaces it.
    fn write_or_replace(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if matches!(self.state, State::Watching)
            && buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = replacement(buf, self.max_head)
        {
            self.state = State::Replacing {
                answer,
                written: 0,
                stands_for: buf.len(),
            };
        }
        let State::Replacing {
            answer,
            written,
            stands_for,
        } = &mut self.state
        else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let stands_for = *stands_for;
        self.state = State::Done;
        Poll::Ready(Ok(stands_for))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemAnswers<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemAnswers<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_or_replace(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A head comes first and alone in its slice; only it is looked at.
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first)
                if !matches!(self.state, State::Done) && first.starts_with(b"HTTP/1.1 4") =>
            {
                self.write_or_replace(cx, first)
            }
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_heads_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 09:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper, 16384).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(answer.contains("content-type: application/problem+json\r\n"));
        assert!(answer.contains("date: Mon, 30 Nov 2026 09:00:00 GMT\r\n"));
        let body: serde_json::Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["status"], 431);
        assert!(body["detail"].as_str().unwrap().contains("16384 bytes"));

        for not_hypers in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\nvary: origin\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(replacement(not_hypers, 16384), None);
        }
    }
}
