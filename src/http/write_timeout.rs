//! A connection's socket with a write timeout: a write that could not send
//! a single byte for the whole timeout fails, and hyper closes the
//! connection.
//!
//! Why here and not in the SSE stream: only the socket knows whether the
//! client is reading. A stream's task cannot tell a stalled client from a
//! quiet topic, and hyper has no write timeout of its own. The clock runs
//! only while a write is blocked on a full socket and restarts at every byte
//! written, so a slow client that keeps reading is never closed, and an idle
//! connection (nothing to write) costs no timer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct WriteTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
    /// Armed while a write is blocked; boxed and made on the first block
    /// only, so idle connections stay small.
    blocked: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<S> WriteTimeout<S> {
    /// `None`: no timeout.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            timeout,
            blocked: None,
            armed: false,
        }
    }

    /// After the inner write answered `Pending`: starts the clock if it is
    /// not running, and fails once it has run out.
    fn poll_blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        let deadline = Instant::now() + timeout;
        let sleep = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        ready!(sleep.as_mut().poll(cx));
        metrics::counter!(crate::telemetry::SSE_SLOW_DISCONNECTS).increment(1);
        tracing::debug!(
            ?timeout,
            "nothing could be written for the write timeout; closing"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the write timeout",
        )))
    }

    fn progressed<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.armed = false;
        }
        r
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.poll_blocked(cx),
            r => this.progressed(r),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_blocked(cx),
            r => this.progressed(r),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Real time, short: tokio's paused clock needs a feature herald does
    // not otherwise use.
    const TIMEOUT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_write_blocked_for_the_timeout_fails() {
        let (a, _b) = tokio::io::duplex(64);
        let mut w = WriteTimeout::new(a, Some(TIMEOUT));
        w.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let err = w.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= TIMEOUT);
    }

    #[tokio::test]
    async fn a_slow_reader_resets_the_clock() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut w = WriteTimeout::new(a, Some(TIMEOUT));
        // Reads a little, often enough, for three timeouts in all.
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            while total < 64 * 12 {
                tokio::time::sleep(TIMEOUT / 4).await;
                total += b.read(&mut buf).await.unwrap();
            }
        });
        for _ in 0..12 {
            w.write_all(&[0; 64]).await.unwrap();
        }
        reader.await.unwrap();
    }
}
