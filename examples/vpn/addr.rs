//! The VPN's addresses and wire format, all pure functions.
//!
//! - **IPv6**: every node of a ring gets `fd` ‖ 40 bits of the ring id's hash (the ring's
//!   /48) ‖ the first 80 bits of its overlay address. Anyone can compute a member's address
//!   from its overlay address, so a packet's IPv6 source is checked without asking anyone.
//! - **IPv4** (optional): a candidate in `100.64.0.0/10` from a hash of the overlay address and
//!   an attempt number, claimed in the DHT under `vpn/ip4/<ip>`. A claim is a signed value
//!   `chamber-vpn claim/1 <unix ms>`; its writer is the claimant. The earliest claim wins,
//!   ties go to the lowest address; a node that loses tries its next candidate.
//! - **Datagrams** on service `vpn`: `0x00 ‖ packet` when the packet fits one datagram, or
//!   `0x01 ‖ id:u16 ‖ index:u8 ‖ count:u8 ‖ piece` (IPv6 needs an MTU of 1280, more than one
//!   datagram carries; the routes' `advmss` keeps TCP within one).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use brunet_compat::address::Address;
use chamber::api::{DhtEntry, MAX_DATAGRAM};
use sha2::{Digest, Sha256};

/// The service the VPN's datagrams use.
pub const SERVICE: &str = "vpn";
/// The ring's IPv6 prefix length.
pub const V6_PREFIX_LEN: u8 = 48;
/// The shared IPv4 range (RFC 6598 shared address space).
pub const V4_NET: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 0);
/// Its prefix length.
pub const V4_PREFIX_LEN: u8 = 10;
/// The device MTU: the IPv6 minimum (RFC 8200 §5).
pub const DEVICE_MTU: u16 = 1280;
/// The largest IP packet that rides one datagram (with its one-byte header).
pub const ONE_DATAGRAM: usize = MAX_DATAGRAM - 1;
/// TCP's advertised MSS on our routes, so a segment fits one datagram: the packet is MSS
/// plus 40 (IPv6) or 20 (IPv4) bytes of IP header and 20 of TCP header.
pub const ADVMSS_V6: usize = ONE_DATAGRAM - 60;
const FRAG_HEADER: usize = 5;
const PIECE: usize = MAX_DATAGRAM - FRAG_HEADER;

/// The ring's IPv6 /48.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingPrefix([u8; 6]);

impl RingPrefix {
    /// The prefix of the ring whose public id (hex, as `chamber ring list` shows it) is `id`.
    pub fn from_ring_id(id: &str) -> RingPrefix {
        let h = Sha256::new()
            .chain_update(b"chamber-vpn/ula/v1\0")
            .chain_update(id.trim().to_ascii_lowercase().as_bytes())
            .finalize();
        let mut p = [0u8; 6];
        p[0] = 0xfd;
        p[1..].copy_from_slice(&h[..5]);
        RingPrefix(p)
    }

    /// The network address (`fdxx:xxxx:xxxx::`).
    pub fn network(&self) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&self.0);
        Ipv6Addr::from(b)
    }

    /// The VPN address of the member with overlay address `a`.
    pub fn address_of(&self, a: &Address) -> Ipv6Addr {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&self.0);
        b[6..].copy_from_slice(&a.as_bytes()[..10]);
        Ipv6Addr::from(b)
    }

    /// Whether `ip` is in the ring's /48.
    pub fn contains(&self, ip: &Ipv6Addr) -> bool {
        ip.octets()[..6] == self.0
    }
}

/// Whether `ip` lies in `100.64.0.0/10`.
pub fn in_v4_net(ip: &Ipv4Addr) -> bool {
    u32::from(*ip) >> (32 - V4_PREFIX_LEN) == u32::from(V4_NET) >> (32 - V4_PREFIX_LEN)
}

/// The `k`-th IPv4 candidate of the member with address `a` (never the range's network or
/// broadcast address).
pub fn ipv4_candidate(a: &Address, k: u32) -> Ipv4Addr {
    let host_bits = 32 - u32::from(V4_PREFIX_LEN);
    let mask = (1u32 << host_bits) - 1;
    let mut salt = 0u32;
    loop {
        let h = Sha256::new()
            .chain_update(b"chamber-vpn/ip4/v1\0")
            .chain_update(a.as_bytes())
            .chain_update(k.to_be_bytes())
            .chain_update(salt.to_be_bytes())
            .finalize();
        let host = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & mask;
        if host != 0 && host != mask {
            return Ipv4Addr::from(u32::from(V4_NET) | host);
        }
        salt += 1;
    }
}

/// The DHT key of the claims on `ip`.
pub fn claim_key(ip: Ipv4Addr) -> String {
    format!("vpn/ip4/{ip}")
}

/// The DHT key naming the owner of an IPv6 address (the writer whose derived address it is).
pub fn v6_key(ip: Ipv6Addr) -> String {
    format!("vpn/ip6/{ip}")
}

/// The DHT key of a member's record (its IPv4 and name), written by the member.
pub fn node_key(a: &Address) -> String {
    format!("vpn/node/{a}")
}

/// The DHT key under which every member puts its record (to list the VPN).
pub const MEMBERS_KEY: &str = "vpn/members";

const CLAIM_TAG: &str = "chamber-vpn claim/1 ";

/// A claim made at `since_ms` (Unix milliseconds).
pub fn claim_value(since_ms: u64) -> Vec<u8> {
    format!("{CLAIM_TAG}{since_ms}").into_bytes()
}

/// The time of a claim value.
pub fn parse_claim(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v)
        .ok()?
        .strip_prefix(CLAIM_TAG)?
        .parse()
        .ok()
}

/// Who owns an IPv4 address, from the values under its claim key: the earliest claim, ties
/// to the lowest address. Values that are not claims are ignored.
pub fn claim_winner(entries: &[DhtEntry]) -> Option<(Address, u64)> {
    entries
        .iter()
        .filter_map(|e| Some((parse_claim(&e.value)?, e.writer)))
        .min()
        .map(|(ms, w)| (w, ms))
}

/// A member's record: what it tells the ring besides its derived IPv6.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Its claimed IPv4, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip4: Option<Ipv4Addr>,
    /// The name it published, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The source and destination of an IPv4 or IPv6 packet.
pub fn packet_addrs(p: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let src: [u8; 4] = p[12..16].try_into().ok()?;
            let dst: [u8; 4] = p[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
        }
        6 if p.len() >= 40 => {
            let src: [u8; 16] = p[8..24].try_into().ok()?;
            let dst: [u8; 16] = p[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
        }
        _ => None,
    }
}

/// The datagrams that carry `packet` (`id` tells the pieces of one packet apart).
pub fn frames(packet: &[u8], id: u16) -> Vec<Vec<u8>> {
    if packet.len() <= ONE_DATAGRAM {
        let mut d = Vec::with_capacity(1 + packet.len());
        d.push(0);
        d.extend_from_slice(packet);
        return vec![d];
    }
    let pieces: Vec<&[u8]> = packet.chunks(PIECE).collect();
    let count = u8::try_from(pieces.len()).unwrap_or(u8::MAX);
    pieces
        .iter()
        .zip(0u8..)
        .map(|(piece, index)| {
            let mut d = Vec::with_capacity(FRAG_HEADER + piece.len());
            d.push(1);
            d.extend_from_slice(&id.to_be_bytes());
            d.extend_from_slice(&[index, count]);
            d.extend_from_slice(piece);
            d
        })
        .collect()
}

/// The pieces of one packet so far, since the first arrived.
type Pieces = (Instant, Vec<Option<Vec<u8>>>);

/// Puts packets back together from their datagrams; pieces wait at most [`Self::WAIT`].
#[derive(Default)]
pub struct Reassembly {
    partial: HashMap<(Address, u16), Pieces>,
}

impl Reassembly {
    /// How long a piece waits for the rest of its packet.
    pub const WAIT: Duration = Duration::from_secs(2);
    /// At most this many packets wait at once.
    const MAX_PARTIAL: usize = 256;

    /// Takes one datagram from `from`; gives a whole packet once there is one. Malformed
    /// datagrams give `Err`.
    pub fn take(
        &mut self,
        now: Instant,
        from: Address,
        d: &[u8],
    ) -> Result<Option<Vec<u8>>, &'static str> {
        match d.split_first() {
            Some((0, p)) => Ok(Some(p.to_vec())),
            Some((1, rest)) if rest.len() > 4 => {
                let id = u16::from_be_bytes([rest[0], rest[1]]);
                let (index, count) = (usize::from(rest[2]), usize::from(rest[3]));
                if count < 2 || index >= count || count * PIECE > 65_535 + PIECE {
                    return Err("bad fragment header");
                }
                self.partial
                    .retain(|_, (t, _)| now.duration_since(*t) < Self::WAIT);
                if self.partial.len() >= Self::MAX_PARTIAL {
                    return Ok(None);
                }
                let slot = self
                    .partial
                    .entry((from, id))
                    .or_insert_with(|| (now, vec![None; count]));
                if slot.1.len() != count {
                    self.partial.remove(&(from, id));
                    return Err("fragments disagree on their count");
                }
                slot.1[index] = Some(rest[4..].to_vec());
                if slot.1.iter().all(Option::is_some) {
                    let pieces = self.partial.remove(&(from, id)).map(|(_, p)| p);
                    Ok(Some(
                        pieces.into_iter().flatten().flatten().flatten().collect(),
                    ))
                } else {
                    Ok(None)
                }
            }
            _ => Err("unknown datagram kind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::from_bytes([b; 20])
    }

    #[test]
    fn ipv6_comes_from_ring_and_overlay_address() {
        let p = RingPrefix::from_ring_id("ab12");
        assert_eq!(p, RingPrefix::from_ring_id("AB12"));
        assert_ne!(p, RingPrefix::from_ring_id("ab13"));
        let ip = p.address_of(&addr(7));
        assert_eq!(ip.octets()[0], 0xfd);
        assert!(p.contains(&ip));
        assert_eq!(&ip.octets()[6..], &[7u8; 10]);
        assert_ne!(ip, p.address_of(&addr(8)));
        assert!(!RingPrefix::from_ring_id("other").contains(&ip));
    }

    #[test]
    fn ipv4_candidates_stay_in_range_and_differ() {
        let a = addr(3);
        let c: Vec<Ipv4Addr> = (0..50).map(|k| ipv4_candidate(&a, k)).collect();
        assert!(c.iter().all(in_v4_net));
        assert!(!in_v4_net(&Ipv4Addr::new(100, 128, 0, 1)));
        assert!(!in_v4_net(&Ipv4Addr::new(10, 64, 0, 1)));
        assert_eq!(c[0], ipv4_candidate(&a, 0), "deterministic");
        let mut d = c.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), c.len());
        assert_ne!(c[0], ipv4_candidate(&addr(4), 0));
    }

    #[test]
    fn earliest_then_lowest_claim_wins() {
        let e = |w: u8, v: Vec<u8>| DhtEntry {
            writer: addr(w),
            value: v,
        };
        assert_eq!(claim_winner(&[]), None);
        let got = claim_winner(&[
            e(9, claim_value(100)),
            e(5, claim_value(200)),
            e(1, b"junk".to_vec()),
        ]);
        assert_eq!(got, Some((addr(9), 100)));
        let tie = claim_winner(&[e(9, claim_value(100)), e(5, claim_value(100))]);
        assert_eq!(tie, Some((addr(5), 100)));
        assert_eq!(parse_claim(b"chamber-vpn claim/1 x"), None);
    }

    #[test]
    fn packets_name_their_addresses() {
        let mut v4 = vec![0u8; 28];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[100, 64, 0, 1]);
        v4[16..20].copy_from_slice(&[100, 64, 0, 2]);
        assert_eq!(
            packet_addrs(&v4),
            Some((
                Ipv4Addr::new(100, 64, 0, 1).into(),
                Ipv4Addr::new(100, 64, 0, 2).into()
            ))
        );
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        v6[23] = 1;
        v6[39] = 2;
        assert_eq!(
            packet_addrs(&v6),
            Some((Ipv6Addr::from(1u128).into(), Ipv6Addr::from(2u128).into()))
        );
        assert_eq!(packet_addrs(&v6[..30]), None);
        assert_eq!(packet_addrs(&[0x50; 60]), None);
    }

    #[test]
    fn big_packets_split_and_rejoin() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        let small = vec![1u8; ONE_DATAGRAM];
        let f = frames(&small, 1);
        assert_eq!(f.len(), 1);
        assert!(f[0].len() <= MAX_DATAGRAM);
        assert_eq!(r.take(now, addr(1), &f[0]), Ok(Some(small)));

        let big: Vec<u8> = (0..1280u32).map(|i| i as u8).collect();
        let f = frames(&big, 7);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|d| d.len() <= MAX_DATAGRAM));
        assert_eq!(r.take(now, addr(1), &f[1]), Ok(None));
        // Another sender's piece with the same id stays apart.
        assert_eq!(r.take(now, addr(2), &f[0]), Ok(None));
        assert_eq!(r.take(now, addr(1), &f[0]), Ok(Some(big.clone())));
        // A piece left alone too long is forgotten.
        let later = now + Reassembly::WAIT + Duration::from_millis(1);
        assert_eq!(r.take(later, addr(2), &f[1]), Ok(None));
        assert!(r.take(now, addr(1), &[9, 1, 2]).is_err());
        assert!(r.take(now, addr(1), &[1, 0, 0, 3, 2, 0]).is_err());
    }
}
