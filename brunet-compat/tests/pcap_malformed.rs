//! Malformed datagrams, derived from the captured ones, give typed errors and never panic.
//!
//! The property checked throughout: whatever `Packet::parse` accepts re-encodes to exactly
//! the bytes it was given, and whatever it rejects comes back as a `PacketError` naming the
//! layer.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;

use brunet_compat::wire::adr::AdrError;
use brunet_compat::wire::ah::AhError;
use brunet_compat::wire::ptype::PTypeError;
use brunet_compat::wire::reqrep::ReqRepError;
use brunet_compat::wire::rpc::RpcError;
use brunet_compat::wire::udp::UdpError;
use brunet_compat::wire::{Packet, PacketError};
use pcap_file::pcap::PcapReader;

/// Unique UDP payloads of both captures (Ethernet/IPv4/UDP stripped).
fn payloads() -> BTreeSet<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/brunet");
    let mut out = BTreeSet::new();
    for name in ["brunet-ring.pcap", "brunet-leave.pcap"] {
        let mut reader = PcapReader::new(File::open(dir.join(name)).unwrap()).unwrap();
        while let Some(frame) = reader.next_packet() {
            let data = frame.unwrap().data;
            let ip = &data[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            out.insert(ip[ihl + 8..].to_vec());
        }
    }
    out
}

/// Parses `bytes`; on success the re-encoding must be identical.
fn check(bytes: &[u8]) -> Result<Packet, PacketError> {
    let parsed = Packet::parse(bytes);
    if let Ok(p) = &parsed {
        assert_eq!(
            p.to_bytes().unwrap(),
            bytes,
            "accepted input must re-encode exactly"
        );
    }
    parsed
}

fn rpc_packet(adr: &[u8]) -> Vec<u8> {
    let mut d = vec![0, 0, 0, 1, 0, 0, 0, 2];
    d.extend_from_slice(b"r\0\x01\0\0\0\x07p\0");
    d.extend_from_slice(adr);
    d
}

#[test]
fn truncated_at_every_offset() {
    let all = payloads();
    assert!(all.len() > 500, "{} unique payloads", all.len());
    let (mut rejected, mut accepted) = (0, 0);
    for full in &all {
        for cut in 0..full.len() {
            match check(&full[..cut]) {
                Ok(_) => accepted += 1,
                Err(_) => rejected += 1,
            }
        }
    }
    // Only cuts landing exactly after a header-only prefix can be valid.
    assert!(
        rejected > 50 * accepted,
        "rejected {rejected}, accepted {accepted}"
    );
}

#[test]
fn short_datagrams() {
    for len in 0..8 {
        assert_eq!(
            check(&[0xff; 8][..len]),
            Err(PacketError::Udp(UdpError::Truncated { len }))
        );
    }
    let mut d = vec![0, 0, 0, 1, 0, 0, 0, 2, 2];
    d.extend_from_slice(&[0; 10]);
    assert_eq!(
        check(&d),
        Err(PacketError::Ah(AhError::Truncated { len: 10 }))
    );
    assert_eq!(
        check(&[0, 0, 0, 1, 0, 0, 0, 2, b'r', 0, 1]),
        Err(PacketError::ReqRep(ReqRepError::Truncated { len: 1 }))
    );
    assert_eq!(
        check(&[0, 0, 0, 1, 0, 0, 0, 2, b'r']),
        Err(PacketError::PType(PTypeError::Unterminated))
    );
}

#[test]
fn wrong_tags() {
    assert_eq!(
        check(&rpc_packet(b"(_m\0?)")),
        Err(PacketError::Rpc(RpcError::Adr(AdrError::UnknownTag {
            tag: b'?',
            offset: 4
        })))
    );
    assert_eq!(
        check(&rpc_packet(b"{_k\0_v\0)")),
        Err(PacketError::Rpc(RpcError::Adr(
            AdrError::UnexpectedTerminator {
                tag: b')',
                offset: 7
            }
        )))
    );
    // Replace the first ADR tag of every captured RPC payload with an unknown one.
    let mut replaced = 0;
    for full in payloads() {
        let Some(at) = full.windows(2).position(|w| w == b"p\0") else {
            continue;
        };
        let mut bad = full.clone();
        bad[at + 2] = b'?';
        assert!(check(&bad).is_err());
        replaced += 1;
    }
    assert!(replaced > 500);
}

#[test]
fn absurd_lengths() {
    assert_eq!(
        check(&rpc_packet(b"aI\xff\xff\xff\xffB")),
        Err(PacketError::Rpc(RpcError::Adr(AdrError::ArrayTooLong {
            len: u32::MAX.into(),
            limit: 1 << 20
        })))
    );
    assert_eq!(
        check(&rpc_packet(b"aI\x00\x01\x00\x00i")),
        Err(PacketError::Rpc(RpcError::Adr(AdrError::Truncated {
            offset: 0
        })))
    );
    assert_eq!(
        check(&rpc_packet(b"_unterminated")),
        Err(PacketError::Rpc(RpcError::Adr(AdrError::Truncated {
            offset: 0
        })))
    );
}

#[test]
fn deep_nesting() {
    for open in [b'(', b'{', b'X'] {
        let deep = vec![open; 50_000];
        assert_eq!(
            check(&rpc_packet(&deep)),
            Err(PacketError::Rpc(RpcError::Adr(AdrError::TooDeep {
                limit: 32
            })))
        );
    }
    // AH inside AH inside AH …
    let mut d = vec![0, 0, 0, 1, 0, 0, 0, 2];
    for _ in 0..100 {
        d.push(2);
        d.extend_from_slice(&[0; 46]);
    }
    assert_eq!(check(&d), Err(PacketError::TooDeep));
}

#[test]
fn single_byte_corruption_never_panics() {
    // Every byte of a sample of captured payloads, set to a few telling values.
    for full in payloads().iter().step_by(25) {
        for at in 0..full.len() {
            for v in [0x00, 0x01, 0x02, 0x29, 0x5f, 0x7b, 0x7d, 0x80, 0xff] {
                let mut bad = full.clone();
                bad[at] = v;
                let _ = check(&bad);
            }
        }
    }
}
