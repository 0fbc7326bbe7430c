//! Open connections per client address (`--max-connections-per-ip`): a
//! count per address with a guard that gives the place back when dropped,
//! and the answer given to a connection past the cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The counts. A plain mutex: it is held for one hash map operation.
#[derive(Debug)]
pub struct PerIp {
    cap: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One place taken; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    /// `cap == 0`: no limit (nothing is counted).
    pub fn new(cap: u32) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: Mutex::default(),
        })
    }

    /// A place for `ip`, or `None` when it already has `cap`. `Some(None)`
    /// means there is no limit.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Option<Slot>> {
        if self.cap == 0 {
            return Some(None);
        }
        let key = key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Some(Slot {
            table: self.clone(),
            key,
        }))
    }

    /// Open connections counted for `ip`, for tests.
    pub fn count(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What is counted: an IPv4 address, or the /64 of an IPv6 one (one host
/// usually has a whole /64 to pick addresses from).
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((v6.to_bits() & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// The whole answer to a connection past the cap, written before anything
/// is read or parsed.
const REFUSAL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 156\r\n\
\r\n\
{\"type\":\"urn:herald:problem:too-many-connections\",\"title\":\"Too many connections\",\"status\":429,\"detail\":\"this client address has too many open connections\"}\n";

/// How long a refused connection is kept for the client to read the
/// answer and close its end.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Refused connections allowed to linger at once; past this a refusal is
/// written and the socket closed at once, so that a flood of refused
/// connections cannot hold descriptors for a second each.
const MAX_LINGERING: usize = 256;

/// Answers a connection past the cap with [`REFUSAL`] and closes it,
/// without parsing anything. The answer fits in a fresh socket's send
/// buffer, so the write does not wait. The socket is then half-closed and
/// drained (at most [`REFUSAL_LINGER`], a few KiB): closing with unread
/// request bytes would send a reset, which can destroy the answer before
/// the client reads it. `lingering` counts the refusals doing that.
pub fn refuse(mut stream: TcpStream, lingering: &Arc<AtomicUsize>) {
    if lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING {
        lingering.fetch_sub(1, Ordering::Relaxed);
        let _ = stream.try_write(REFUSAL);
        return;
    }
    let lingering = lingering.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            stream.write_all(REFUSAL).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            for _ in 0..16 {
                if stream.read(&mut sink).await? == 0 {
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        lingering.fetch_sub(1, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body.len(), 156, "content-length must match the body");
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 429);
    }

    #[test]
    fn places_are_counted_per_address_and_given_back() {
        let table = PerIp::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = table.acquire(a).unwrap();
        let second = table.acquire(a).unwrap();
        assert!(table.acquire(a).is_none());
        assert!(table.acquire(b).is_some());
        drop(first);
        assert!(table.acquire(a).is_some());
        drop(second);
        assert_eq!(table.count(a), 0);
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        let _x = table.acquire(v6a).unwrap();
        let _y = table.acquire(v6b).unwrap();
        assert!(table.acquire(v6a).is_none(), "one /64 is one client");
        assert!(PerIp::new(0).acquire(a).unwrap().is_none(), "0: unlimited");
    }
}
