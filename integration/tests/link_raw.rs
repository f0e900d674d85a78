//! An attacker on the lab's internet (included with `#[path]`): captures UDP packets crossing
//! the public namespace and sends packets with any source address, so link tests can replay
//! a friend's own packets or spray garbage that looks like it came from the friend.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chamber_lab::Netns;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// One IPv4/UDP packet as it crossed the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The IP packet, header included (what [`inject`] sends again).
    pub ip: Vec<u8>,
    /// Source.
    pub src: SocketAddrV4,
    /// Destination.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

impl Captured {
    /// Reads an IPv4/UDP packet; `None` for anything else.
    pub fn parse(ip: &[u8]) -> Option<Captured> {
        if ip.len() < 28 || ip[0] >> 4 != 4 || ip[9] != 17 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let udp = ip.get(ihl..total)?;
        if udp.len() < 8 {
            return None;
        }
        let addr = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
        let port = |o: usize| u16::from_be_bytes([udp[o], udp[o + 1]]);
        Some(Captured {
            ip: ip[..total].to_vec(),
            src: SocketAddrV4::new(addr(12), port(0)),
            dst: SocketAddrV4::new(addr(16), port(2)),
            payload: udp[8..].to_vec(),
        })
    }
}

/// Captures every IPv4/UDP packet seen in a namespace (on all its interfaces) until dropped.
pub struct Sniffer {
    packets: Arc<Mutex<Vec<Captured>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sniffer {
    /// Starts capturing in `ns`.
    pub fn start(ns: &Netns) -> Sniffer {
        let fd: OwnedFd = ns
            .run(|| {
                let fd = socket(
                    AddressFamily::Packet,
                    SockType::Datagram,
                    SockFlag::empty(),
                    SockProtocol::EthAll,
                )
                .expect("a packet socket");
                setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000))
                    .expect("receive timeout");
                fd
            })
            .expect("enter the namespace");
        let packets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                let Ok(n) = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) else {
                    continue;
                };
                if let Some(c) = Captured::parse(&buf[..n]) {
                    let mut v = p.lock().unwrap_or_else(|e| e.into_inner());
                    // Each forwarded packet shows up on the way in and on the way out.
                    if v.iter()
                        .rev()
                        .take(8)
                        .all(|o: &Captured| o.payload != c.payload)
                    {
                        v.push(c);
                    }
                }
            }
        });
        Sniffer {
            packets,
            stop,
            thread: Some(thread),
        }
    }

    /// The packets captured so far that `keep` accepts.
    pub fn find(&self, keep: impl Fn(&Captured) -> bool) -> Vec<Captured> {
        let v = self.packets.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().filter(|c| keep(c)).cloned().collect()
    }

    /// Waits up to `wait` for a packet `keep` accepts.
    pub fn wait_for(&self, wait: Duration, keep: impl Fn(&Captured) -> bool) -> Option<Captured> {
        let until = std::time::Instant::now() + wait;
        loop {
            if let Some(c) = self.find(&keep).into_iter().next() {
                return Some(c);
            }
            if std::time::Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends whole IP packets from `ns` exactly as given (any source address).
pub struct Injector {
    fd: OwnedFd,
}

impl Injector {
    /// A raw socket in `ns`.
    pub fn new(ns: &Netns) -> Injector {
        let fd = ns
            .run(|| {
                socket(
                    AddressFamily::Inet,
                    SockType::Raw,
                    SockFlag::empty(),
                    SockProtocol::Raw,
                )
                .expect("a raw socket")
            })
            .expect("enter the namespace");
        Injector { fd }
    }

    /// Sends an IP/UDP packet (header included) towards its destination. The UDP checksum
    /// is cleared ("none", legal over IPv4): a packet captured on a veth carries a partial
    /// one that the sender's kernel left for offloading, and would be dropped as corrupt.
    pub fn send(&self, ip: &[u8]) {
        let c = Captured::parse(ip).expect("an IPv4/UDP packet");
        let mut ip = ip.to_vec();
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        ip[ihl + 6..ihl + 8].fill(0);
        let to = SockaddrIn::from(SocketAddrV4::new(*c.dst.ip(), 0));
        sendto(self.fd.as_raw_fd(), &ip, &to, MsgFlags::empty()).expect("send a raw packet");
    }

    /// Sends `payload` as a UDP datagram from `src` to `dst`.
    pub fn send_udp(&self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
        self.send(&udp_packet(src, dst, payload));
    }
}

/// An IPv4/UDP packet; the kernel fills in the IP checksum, and a zero UDP checksum means none.
pub fn udp_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}
