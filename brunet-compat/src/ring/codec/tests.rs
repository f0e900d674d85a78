use super::*;
use crate::address::{Address, Direction};
use crate::ring::msg::{DhtValue, Header, Mode, NeighbourInfo, Payload, Req, Routed, Rsp};
use crate::ring::table::ConnType;
use crate::wire::link::LinkRequest;
use crate::wire::{PType, Payload as WirePayload};

fn a(b: u8) -> Address {
    Address::ah([b; 20])
}

fn routed(mode: Mode, payload: Payload) -> Msg {
    Msg::Routed(Routed {
        hdr: Header {
            hops: 3,
            ttl: 17,
            src: a(0x11),
            dst: a(0x22),
            mode,
        },
        payload,
    })
}

fn value(v: &[u8]) -> DhtValue {
    DhtValue {
        value: v.to_vec(),
        sig: vec![9, 9],
        ttl_s: 3600,
    }
}

fn infos() -> Vec<NeighbourInfo> {
    vec![
        NeighbourInfo {
            addr: a(0x40),
            age_ms: 12_000,
            rtt_us: 35_000,
        },
        NeighbourInfo {
            addr: a(0x42),
            age_ms: 0,
            rtt_us: 0,
        },
    ]
}

/// One message of every kind, and every payload, request and response kind.
pub(crate) fn samples() -> Vec<Msg> {
    let payloads = vec![
        Payload::Ctm {
            kind: ConnType::NEAR,
            token: 7,
            via: Some(a(0x33)),
            near: vec![a(1), a(2)],
        },
        Payload::Ctm {
            kind: ConnType::SHORTCUT,
            token: u32::MAX,
            via: None,
            near: vec![],
        },
        Payload::CtmReply {
            token: 0x8000_0001,
            kind: ConnType::NEAR | ConnType::SHORTCUT,
            near: vec![a(3)],
        },
        Payload::Via {
            to: a(0x44),
            inner: Box::new(Payload::CtmReply {
                token: 1,
                kind: ConnType::NEAR,
                near: vec![a(4), a(6)],
            }),
        },
        Payload::App(b"hello".to_vec()),
        Payload::App(Vec::new()),
        Payload::Request {
            id: 1,
            req: Req::Lookup,
        },
        Payload::Request {
            id: 2,
            req: Req::Put(value(b"v")),
        },
        Payload::Request {
            id: 3,
            req: Req::Get,
        },
        Payload::Request {
            id: u32::MAX,
            req: Req::Remove(b"gone".to_vec()),
        },
        Payload::Response {
            id: 1,
            hops: 4,
            rsp: Rsp::Lookup,
        },
        Payload::Response {
            id: 2,
            hops: 0,
            rsp: Rsp::Put(true),
        },
        Payload::Response {
            id: 3,
            hops: 9,
            rsp: Rsp::Get(vec![value(b"x"), value(b"")]),
        },
        Payload::Response {
            id: 4,
            hops: 1,
            rsp: Rsp::Remove(false),
        },
        Payload::RelayOffer {
            via: Some(a(0x50)),
            neighbours: infos(),
        },
        Payload::RelayOffer {
            via: None,
            neighbours: vec![],
        },
        Payload::RelayAnswer {
            forwarder: Some(a(0x40)),
            neighbours: infos(),
        },
        Payload::RelayAnswer {
            forwarder: None,
            neighbours: vec![],
        },
    ];
    let modes = [
        Mode::Default,
        Mode::Last,
        Mode::Path,
        Mode::Greedy,
        Mode::Annealing,
        Mode::Exact,
    ];
    let mut v: Vec<Msg> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| routed(modes[i % modes.len()], p))
        .collect();
    let status = Msg::Status {
        routable: true,
        wants: false,
        near: vec![a(5), a(6), a(7)],
        size_log2: 13.25,
    };
    v.extend([
        status.clone(),
        Msg::Status {
            routable: false,
            wants: true,
            near: vec![],
            size_log2: 0.0,
        },
        Msg::Want(true),
        Msg::Want(false),
        Msg::Close,
        Msg::RelayFwd {
            to: a(0x60),
            inner: Box::new(status.clone()),
        },
        Msg::RelayDel {
            from: a(0x61),
            inner: Box::new(routed(Mode::Exact, Payload::App(vec![1, 2, 3]))),
        },
        Msg::RelayGone { peer: a(0x62) },
        Msg::DhtStore {
            key: a(0x70),
            values: vec![value(b"a"), value(b"b")],
        },
        Msg::DhtDrop {
            key: a(0x71),
            value: b"a".to_vec(),
        },
        Msg::Broadcast {
            src: a(0x72),
            end: a(0x10),
            hops: 3,
            data: b"all".to_vec(),
        },
    ]);
    // A directional destination (class 124) rides in the AH header as any other.
    v.push(Msg::Routed(Routed {
        hdr: Header {
            hops: 0,
            ttl: 2,
            src: a(0x11),
            dst: Address::directional(Direction::Left),
            mode: Mode::Path,
        },
        payload: Payload::Ctm {
            kind: ConnType::NEAR,
            token: 3,
            via: None,
            near: vec![a(8)],
        },
    }));
    v
}

#[test]
fn every_message_kind_round_trips() {
    for m in samples() {
        let bytes = encode(&m);
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{m:?}: {e}"));
        assert_eq!(back, m);
        assert_eq!(encode(&back), bytes, "{m:?}");
    }
}

#[test]
fn an_unknown_size_survives_bit_for_bit() {
    let m = Msg::Status {
        routable: true,
        wants: true,
        near: vec![a(1)],
        size_log2: f32::NAN,
    };
    let Msg::Status { size_log2, .. } = decode(&encode(&m)).unwrap() else {
        panic!("not a status");
    };
    assert!(size_log2.is_nan());
}

#[test]
fn brunet_reads_the_link_messages_it_defines() {
    let all = samples();
    let status = all
        .iter()
        .find(|m| matches!(m, Msg::Status { near, .. } if near.len() == 3))
        .expect("a status sample");
    let WirePayload::ReqRep { header, .. } = WirePayload::parse(&encode(status)).unwrap() else {
        panic!("not ReqRep");
    };
    assert_eq!(header.kind, ReqRepType::LossyRequest);
    let p = WirePayload::parse(&encode(status)).unwrap();
    let call = RpcCall::from_adr(p.rpc().unwrap()).unwrap();
    let Some(LinkRequest::GetStatus(s)) = LinkRequest::from_call(&call).unwrap() else {
        panic!("{call:?}");
    };
    assert_eq!(s.neighbor_type, "structured.near");
    assert_eq!(s.neighbors.len(), 3);
    assert_eq!(s.neighbors[0].address, Some(a(5)));

    let ctm = &all[0];
    let bytes = encode(ctm);
    assert_eq!(bytes[0], 2, "AH PType");
    assert_eq!(&bytes[1..5], &[0, 3, 0, 17], "hops and TTL");
    assert_eq!(&bytes[5..25], a(0x11).as_bytes());
    assert_eq!(&bytes[45..47], &[0, 0], "default mode");
    let p = WirePayload::parse(&bytes).unwrap();
    let call = RpcCall::from_adr(p.rpc().unwrap()).unwrap();
    let Some(LinkRequest::ConnectTo(c)) = LinkRequest::from_call(&call).unwrap() else {
        panic!("{call:?}");
    };
    assert_eq!(c.connection_type, "structured.near");
    assert_eq!(c.token, "7");
    assert_eq!(c.target.address, Some(a(0x11)));
    assert_eq!(c.neighbors.len(), 2);

    let close = encode(&Msg::Close);
    let p = WirePayload::parse(&close).unwrap();
    let call = RpcCall::from_adr(p.rpc().unwrap()).unwrap();
    assert!(matches!(
        LinkRequest::from_call(&call).unwrap(),
        Some(LinkRequest::Close(_))
    ));
}

#[test]
fn a_brunet_status_without_our_part_decodes_with_defaults() {
    use crate::wire::link::{NodeInfo, StatusMessage};
    let s = StatusMessage {
        neighbor_type: "structured.near".into(),
        neighbors: vec![NodeInfo::address_only(a(9))],
    };
    let p = notify(crate::wire::link::method::GET_STATUS, vec![s.to_adr()]);
    let mut bytes = Vec::new();
    p.emit(&mut bytes).unwrap();
    let Msg::Status {
        routable,
        wants,
        near,
        size_log2,
    } = decode(&bytes).unwrap()
    else {
        panic!("not a status");
    };
    assert!(routable && wants && size_log2.is_nan());
    assert_eq!(near, vec![a(9)]);
}

#[test]
fn relay_legs_use_brunets_forwarding_format() {
    let fwd = Msg::RelayFwd {
        to: a(0x60),
        inner: Box::new(Msg::Want(true)),
    };
    let b = encode(&fwd);
    assert_eq!(&b[..3], b"f\0\0");
    assert_eq!(&b[3..23], a(0x60).as_bytes());
    let del = Msg::RelayDel {
        from: a(0x61),
        inner: Box::new(Msg::Want(true)),
    };
    let b = encode(&del);
    assert_eq!(&b[..3], b"f\0\x01");
    // A relay leg inside a relay leg inside a relay leg is not a ring message.
    let deep = Msg::RelayFwd {
        to: a(1),
        inner: Box::new(Msg::RelayDel {
            from: a(2),
            inner: Box::new(Msg::RelayFwd {
                to: a(3),
                inner: Box::new(Msg::Close),
            }),
        }),
    };
    assert_eq!(
        decode(&encode(&deep)),
        Err(CodecError::BadValue("relay nesting"))
    );
}

#[test]
fn malformed_input_gives_typed_errors() {
    assert!(matches!(decode(&[]), Err(CodecError::Wire(_))));
    // A PType the ring does not use.
    assert_eq!(
        decode(b"e\0ping"),
        Err(CodecError::UnexpectedPType("e".into()))
    );
    // An RPC method nobody defined.
    let p = notify("chamber:nope.Nope", vec![]);
    let mut b = Vec::new();
    p.emit(&mut b).unwrap();
    assert_eq!(
        decode(&b),
        Err(CodecError::UnknownMethod("chamber:nope.Nope".into()))
    );
    // Wrong argument count and wrong types.
    for (method, args) in [
        ("chamber:link.Want", vec![]),
        ("chamber:link.Want", vec![Adr::I32(1)]),
        ("chamber:relay.Gone", vec![Adr::Bytes(vec![1, 2, 3])]),
        ("sys:link.Close", vec![Adr::I32(1)]),
    ] {
        let p = notify(method, args);
        let mut b = Vec::new();
        p.emit(&mut b).unwrap();
        assert!(decode(&b).is_err(), "{method}");
    }
    // An app datagram outside an AH header is not a link message.
    let p = WirePayload::Other {
        ptype: PType::Name("chamber.app".into()),
        data: vec![1],
    };
    let mut b = Vec::new();
    p.emit(&mut b).unwrap();
    assert!(matches!(decode(&b), Err(CodecError::UnexpectedPType(_))));
}

#[test]
fn every_truncation_and_bit_flip_is_handled() {
    for m in samples() {
        let bytes = encode(&m);
        for cut in 0..bytes.len() {
            let _ = decode(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            if let Ok(m2) = decode(&b) {
                // Whatever decodes re-encodes to something that decodes the same.
                let again = decode(&encode(&m2)).expect("re-encoded message decodes");
                assert_eq!(encode(&again), encode(&m2));
            }
        }
    }
}

/// The `ring_codec` fuzz corpus holds one encoded sample of every kind; regenerate it
/// with `BRUNET_WRITE_SEEDS=1`.
#[test]
fn seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ring_codec");
    let write = std::env::var_os("BRUNET_WRITE_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (i, m) in samples().iter().enumerate() {
        let path = dir.join(format!("sample-{i:02}"));
        let bytes = encode(m);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let have = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(have, bytes, "{} is stale", path.display());
        }
    }
}
