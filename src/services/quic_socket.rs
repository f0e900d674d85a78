//! A quinn socket whose datagrams are ring messages: a QUIC packet to a member is routed over
//! the ring (direct link, TURN link, relay edge or several overlay hops), so one QUIC
//! connection works the same whatever the path. quinn names peers by `SocketAddr`; each ring
//! address maps to a synthetic one (its first 18 bytes as an IPv6 address and a port), kept
//! in [`AddrMap`] both ways.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use brunet_compat::address::Address as RingAddress;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::mpsc;

use crate::runtime::RuntimeHandle;

/// Ring addresses and the socket addresses quinn knows them by.
#[derive(Debug, Default)]
pub struct AddrMap {
    to_ring: Mutex<HashMap<SocketAddr, RingAddress>>,
}

impl AddrMap {
    /// The socket address standing for `a` (remembered for the way back).
    pub fn socket_of(&self, a: &RingAddress) -> SocketAddr {
        let b = a.as_bytes();
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[..16]);
        let port = u16::from_be_bytes([b[16], b[17]]);
        let s = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0));
        if let Ok(mut m) = self.to_ring.lock() {
            m.entry(s).or_insert(*a);
        }
        s
    }

    /// The ring address behind `s`, if it was ever mapped.
    pub fn ring_of(&self, s: &SocketAddr) -> Option<RingAddress> {
        self.to_ring.lock().ok()?.get(s).copied()
    }
}

/// QUIC over one ring.
pub struct RingSocket {
    ring: usize,
    local: SocketAddr,
    runtime: RuntimeHandle,
    map: Arc<AddrMap>,
    inbox: Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    /// Packets dropped because the runtime's queue was full (like a full socket buffer).
    pub dropped: AtomicU64,
}

impl fmt::Debug for RingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingSocket")
            .field("ring", &self.ring)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Packets received and not yet read by quinn.
pub const INBOX: usize = 4096;

impl RingSocket {
    /// A socket for ring `ring` where we are `me`; feed received packets to the sender.
    pub fn new(
        ring: usize,
        me: &RingAddress,
        runtime: RuntimeHandle,
        map: Arc<AddrMap>,
    ) -> (Arc<RingSocket>, mpsc::Sender<(SocketAddr, Vec<u8>)>) {
        let (tx, rx) = mpsc::channel(INBOX);
        let local = map.socket_of(me);
        let s = RingSocket {
            ring,
            local,
            runtime,
            map,
            inbox: Mutex::new(rx),
            dropped: AtomicU64::new(0),
        };
        (Arc::new(s), tx)
    }
}

/// Sending never blocks: a full queue drops the packet, as a UDP socket would.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for RingSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, t: &Transmit) -> io::Result<()> {
        let Some(to) = self.map.ring_of(&t.destination) else {
            // Only addresses we mapped are ever dialled; anything else is nobody.
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "not a ring address",
            ));
        };
        let seg = t.segment_size.unwrap_or(t.contents.len()).max(1);
        for chunk in t.contents.chunks(seg) {
            if !self.runtime.quic_out(self.ring, to, chunk.to_vec()) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let Ok(mut inbox) = self.inbox.lock() else {
            return Poll::Ready(Err(io::Error::other("socket poisoned")));
        };
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            match inbox.poll_recv(cx) {
                Poll::Ready(Some((from, packet))) => {
                    let len = packet.len().min(bufs[n].len());
                    bufs[n][..len].copy_from_slice(&packet[..len]);
                    meta[n] = RecvMeta {
                        addr: from,
                        len,
                        stride: len,
                        ecn: None,
                        dst_ip: None,
                    };
                    n += 1;
                }
                Poll::Ready(None) if n == 0 => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the ring is gone",
                    )));
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if n == 0 {
            Poll::Pending
        } else {
            Poll::Ready(Ok(n))
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_both_ways() {
        let m = AddrMap::default();
        let a = RingAddress::from_bytes([0xab; 20]);
        let s = m.socket_of(&a);
        assert_eq!(m.ring_of(&s), Some(a));
        let unknown = "[::1]:9".parse().unwrap();
        assert_eq!(m.ring_of(&unknown), None);
    }
}
