//! Packets between the TUN device and the ring.
//!
//! Out: a packet read from the device → its destination's owner (cache, else a DHT look-up
//! while up to [`MAX_WAITING`] packets wait) → `send_nowait` on service `vpn`.
//! In: a `vpn` datagram → reassembled → its source must belong to the sender (IPv6: derived
//! from the sender's address; IPv4: the sender wins the claim) and its destination must be
//! ours → written to the device. Everything dropped is counted.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use brunet_compat::address::Address;
use chamber::api::{Datagram, Event, Subscription};
use tun_rs::AsyncDevice;

use crate::addr::{self, Reassembly};
use crate::directory::{Directory, unix_ms};

/// Packets that may wait for one destination's look-up.
const MAX_WAITING: usize = 16;

/// What was forwarded and dropped.
#[derive(Default, serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Counters {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    /// Destinations nobody in the ring owns.
    pub no_owner: u64,
    /// Incoming packets whose source is not the sender's.
    pub spoofed: u64,
    /// Incoming packets for an address that is not ours.
    pub not_ours: u64,
    /// Datagrams that are not packets, or broken fragments.
    pub malformed: u64,
    /// Packets dropped while a look-up was already holding enough.
    pub queue_full: u64,
}

/// A peer we exchanged packets with.
#[derive(Default, serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct PeerStats {
    pub ips: Vec<IpAddr>,
    pub sent: u64,
    pub received: u64,
    pub last_ms: u64,
}

/// An incoming packet held while its source is checked, with its sender.
type Held = (Address, Vec<u8>);

/// The forwarder's state, shared by its tasks.
pub struct Forwarder {
    pub dir: Arc<Directory>,
    pub dev: Arc<AsyncDevice>,
    pub ip6: Ipv6Addr,
    pub ip4: Mutex<Option<Ipv4Addr>>,
    counters: Mutex<Counters>,
    peers: Mutex<BTreeMap<Address, PeerStats>>,
    waiting_out: Mutex<HashMap<IpAddr, Vec<Vec<u8>>>>,
    waiting_in: Mutex<HashMap<IpAddr, Vec<Held>>>,
    next_id: AtomicU16,
    lookups: AtomicU64,
}

impl Forwarder {
    pub fn new(dir: Arc<Directory>, dev: Arc<AsyncDevice>, ip6: Ipv6Addr) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            dir,
            dev,
            ip6,
            ip4: Mutex::new(None),
            counters: Mutex::default(),
            peers: Mutex::default(),
            waiting_out: Mutex::default(),
            waiting_in: Mutex::default(),
            next_id: AtomicU16::new(0),
            lookups: AtomicU64::new(0),
        })
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The peers now.
    pub fn peers(&self) -> BTreeMap<Address, PeerStats> {
        self.peers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// DHT look-ups made.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.counters.lock() {
            f(&mut c);
        }
    }

    fn peer(&self, a: Address, ip: IpAddr, f: impl FnOnce(&mut PeerStats)) {
        if let Ok(mut p) = self.peers.lock() {
            let s = p.entry(a).or_default();
            if !s.ips.contains(&ip) {
                s.ips.push(ip);
            }
            s.last_ms = unix_ms();
            f(s);
        }
    }

    fn is_ours(&self, ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V6(v6) => *v6 == self.ip6,
            IpAddr::V4(v4) => self.ip4.lock().is_ok_and(|o| *o == Some(*v4)),
        }
    }

    /// Reads the device and sends each packet to its destination's owner, until the device
    /// fails.
    pub async fn outbound(self: Arc<Self>) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = self.dev.recv(&mut buf).await?;
            let packet = &buf[..n];
            let Some((_, dst)) = addr::packet_addrs(packet) else {
                continue;
            };
            match self.dir.cached(&dst, Instant::now()) {
                Some(Some(owner)) => self.send(owner, dst, packet).await,
                Some(None) => self.count(|c| c.no_owner += 1),
                None => self.wait_for_owner(dst, packet.to_vec()),
            }
        }
    }

    async fn send(&self, owner: Address, dst: IpAddr, packet: &[u8]) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        for d in addr::frames(packet, id) {
            if let Err(e) = self.dir.client.send_nowait(&owner, addr::SERVICE, &d).await {
                tracing::warn!(%e, "cannot hand a packet to the daemon");
                return;
            }
        }
        self.count(|c| {
            c.sent_packets += 1;
            c.sent_bytes += packet.len() as u64;
        });
        self.peer(owner, dst, |s| s.sent += 1);
    }

    /// Holds `packet` while `dst`'s owner is looked up (one look-up per destination).
    fn wait_for_owner(self: &Arc<Self>, dst: IpAddr, packet: Vec<u8>) {
        let first = {
            let Ok(mut w) = self.waiting_out.lock() else {
                return;
            };
            let q = w.entry(dst).or_default();
            if q.len() >= MAX_WAITING {
                drop(w);
                self.count(|c| c.queue_full += 1);
                return;
            }
            q.push(packet);
            q.len() == 1
        };
        if !first {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.lookups.fetch_add(1, Ordering::Relaxed);
            let owner = match me.dir.owner_of(dst).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(%dst, %e, "owner look-up failed");
                    None
                }
            };
            let held = me
                .waiting_out
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&dst))
                .unwrap_or_default();
            match owner {
                Some(o) => {
                    for p in held {
                        me.send(o, dst, &p).await;
                    }
                }
                None => {
                    tracing::debug!(%dst, "nobody in the ring owns this address");
                    me.count(|c| c.no_owner += held.len() as u64);
                }
            }
        });
    }

    /// Takes `vpn` datagrams and writes the packets that check to the device, until the
    /// daemon connection closes.
    pub async fn inbound(self: Arc<Self>, mut sub: Subscription) -> anyhow::Result<()> {
        let mut reassembly = Reassembly::default();
        while let Some(ev) = sub.next().await {
            let Event::Datagram(Datagram {
                from,
                service,
                payload,
                broadcast_hops: None,
            }) = ev
            else {
                continue;
            };
            if service != addr::SERVICE {
                continue;
            }
            let packet = match reassembly.take(Instant::now(), from, &payload) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(why) => {
                    tracing::debug!(%from, why, "malformed VPN datagram");
                    self.count(|c| c.malformed += 1);
                    continue;
                }
            };
            self.deliver(from, packet).await;
        }
        anyhow::bail!("the chamber daemon closed the connection")
    }

    async fn deliver(self: &Arc<Self>, from: Address, packet: Vec<u8>) {
        let Some((src, dst)) = addr::packet_addrs(&packet) else {
            self.count(|c| c.malformed += 1);
            return;
        };
        if !self.is_ours(&dst) {
            self.count(|c| c.not_ours += 1);
            return;
        }
        let owner = match src {
            IpAddr::V6(v6) => Some((self.dir.prefix.address_of(&from) == v6).then_some(from)),
            IpAddr::V4(_) => self.dir.cached(&src, Instant::now()),
        };
        match owner {
            Some(Some(o)) if o == from => {
                if src.is_ipv6() {
                    self.dir.learn(src, Some(from));
                }
                self.write(from, src, &packet).await;
            }
            Some(_) => self.spoofed(from, src),
            None => self.check_then_write(from, src, packet),
        }
    }

    fn spoofed(&self, from: Address, src: IpAddr) {
        let first = self
            .counters
            .lock()
            .map(|mut c| {
                c.spoofed += 1;
                c.spoofed == 1
            })
            .unwrap_or(false);
        if first {
            tracing::warn!(%from, %src, "dropped a packet whose source is not its sender's (further ones counted)");
        }
    }

    async fn write(&self, from: Address, src: IpAddr, packet: &[u8]) {
        if let Err(e) = self.dev.send(packet).await {
            tracing::debug!(%e, "TUN write failed");
            return;
        }
        self.count(|c| {
            c.received_packets += 1;
            c.received_bytes += packet.len() as u64;
        });
        self.peer(from, src, |s| s.received += 1);
    }

    /// Holds an incoming IPv4 packet while its source's owner is looked up.
    fn check_then_write(self: &Arc<Self>, from: Address, src: IpAddr, packet: Vec<u8>) {
        let first = {
            let Ok(mut w) = self.waiting_in.lock() else {
                return;
            };
            let q = w.entry(src).or_default();
            if q.len() >= MAX_WAITING {
                drop(w);
                self.count(|c| c.queue_full += 1);
                return;
            }
            q.push((from, packet));
            q.len() == 1
        };
        if !first {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.lookups.fetch_add(1, Ordering::Relaxed);
            let owner = me.dir.owner_of(src).await.ok().flatten();
            let held = me
                .waiting_in
                .lock()
                .ok()
                .and_then(|mut w| w.remove(&src))
                .unwrap_or_default();
            for (from, p) in held {
                if owner == Some(from) {
                    me.write(from, src, &p).await;
                } else {
                    me.spoofed(from, src);
                }
            }
        });
    }
}
