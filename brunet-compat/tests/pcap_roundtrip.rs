//! Every packet of the Brunet captures decodes fully and re-encodes byte for byte.
//!
//! The captures (`shared/vectors/brunet/`, see NOTES.md there) are Ethernet frames on a
//! loopback interface: Ethernet, IPv4, UDP, then a Brunet edge datagram. Each decoded
//! packet is also checked against `brunet-ring.decoded.txt`, a one-line-per-packet decode
//! made independently when the capture was taken.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use brunet_compat::address::Address;
use brunet_compat::wire::Adr;
use brunet_compat::wire::ah::DeliveryMode;
use brunet_compat::wire::forward::ForwardRepr;
use brunet_compat::wire::link::{
    ConnectToMessage, LinkMessage, LinkRequest, StatusMessage, method,
};
use brunet_compat::wire::reqrep::ReqRepType;
use brunet_compat::wire::rpc::{RpcCall, RpcException};
use brunet_compat::wire::{Packet, PacketBody, Payload, ReqRepBody};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/brunet")
}

/// A UDP datagram from a capture: ports and payload.
struct Datagram {
    src_port: u16,
    dst_port: u16,
    payload: Vec<u8>,
}

/// Reads every frame of a capture and strips Ethernet, IPv4 and UDP.
fn datagrams(name: &str) -> Vec<Datagram> {
    let file = File::open(vectors().join(name)).expect("capture present");
    let mut reader = PcapReader::new(file).expect("pcap header");
    assert_eq!(reader.header().datalink, DataLink::ETHERNET, "{name}");
    let mut out = Vec::new();
    while let Some(frame) = reader.next_packet() {
        let data = frame.expect("pcap record").data;
        assert_eq!(&data[12..14], &[0x08, 0x00], "IPv4 ethertype");
        let ip = &data[14..];
        assert_eq!(ip[0] >> 4, 4, "IPv4");
        assert_eq!(ip[9], 17, "UDP");
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let udp = &ip[ihl..total];
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        assert_eq!(udp_len, udp.len(), "UDP length");
        out.push(Datagram {
            src_port: u16::from_be_bytes([udp[0], udp[1]]),
            dst_port: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

fn decode_all(name: &str, expected_count: usize) -> Vec<(Datagram, Packet)> {
    let grams = datagrams(name);
    assert_eq!(grams.len(), expected_count, "{name}");
    grams
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let p = Packet::parse(&d.payload).unwrap_or_else(|e| panic!("{name} #{}: {e}", i + 1));
            let again = p.to_bytes().expect("re-encode");
            assert_eq!(again, d.payload, "{name} #{} re-encodes byte-exact", i + 1);
            (d, p)
        })
        .collect()
}

#[test]
fn ring_capture_round_trips() {
    decode_all("brunet-ring.pcap", 697);
}

#[test]
fn leave_capture_round_trips() {
    decode_all("brunet-leave.pcap", 1032);
}

/// The layers of a packet as flat facts, for comparison with the text decode.
#[derive(Default, Debug)]
struct Facts {
    ah: Option<(i16, i16, String, String, u16)>,
    fwd: Option<String>,
    rr: Option<(ReqRepType, i32)>,
    method: Option<String>,
}

fn b32_head(a: &Address) -> String {
    a.to_base32()[..8].to_owned()
}

fn facts(p: &Payload, f: &mut Facts) {
    match p {
        Payload::Ah { header, inner } => {
            f.ah = Some((
                header.hops,
                header.ttl,
                b32_head(&header.source),
                b32_head(&header.destination),
                header.mode.into(),
            ));
            facts(inner, f);
        }
        Payload::Forward { header, inner } => {
            f.fwd = Some(match header {
                ForwardRepr::ToForwarder {
                    destination,
                    ttl,
                    mode,
                } => format!(
                    "leg1 to={} ttl={ttl} opts={}",
                    b32_head(destination),
                    u16::from(*mode)
                ),
                ForwardRepr::FromForwarder { origin } => {
                    format!("leg2 origin={}", b32_head(origin))
                }
            });
            facts(inner, f);
        }
        Payload::ReqRep { header, body } => {
            f.rr = Some((header.kind, header.id));
            if let ReqRepBody::Payload(inner) = body {
                facts(inner, f);
            }
        }
        Payload::Rpc(v) => {
            f.method = RpcCall::from_adr(v).ok().map(|c| c.method);
        }
        Payload::Other { ptype, .. } => panic!("unexpected PType {ptype}"),
    }
}

/// The text between `start` and the next `end` in `line`.
fn between<'a>(line: &'a str, start: &str, end: char) -> Option<&'a str> {
    let at = line.find(start)? + start.len();
    let rest = &line[at..];
    Some(&rest[..rest.find(end)?])
}

#[test]
fn ring_capture_matches_text_decode() {
    let packets = decode_all("brunet-ring.pcap", 697);
    let text = std::fs::read_to_string(vectors().join("brunet-ring.decoded.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), packets.len());
    let mut seen_methods: BTreeMap<String, usize> = BTreeMap::new();
    for (i, ((d, p), line)) in packets.iter().zip(&lines).enumerate() {
        let n = i + 1;
        assert!(line.starts_with(&format!("#{n} ")), "{line}");
        let ports = format!(" {}->{} ", d.src_port, d.dst_port);
        assert!(line.contains(&ports), "#{n} ports {ports} in {line}");
        assert!(
            line.contains(&format!(" len={} ", d.payload.len())),
            "#{n} len"
        );
        let ids = format!(
            "ids(sender={}, receiver={})",
            p.header.sender, p.header.receiver
        );
        assert!(line.contains(&ids), "#{n}: {ids} in {line}");

        let mut f = Facts::default();
        match &p.body {
            PacketBody::Empty => {
                assert!(line.contains("WAKEUP"), "#{n}");
                continue;
            }
            PacketBody::Control(c) => panic!("#{n}: no control messages were captured: {c:?}"),
            PacketBody::Payload(payload) => facts(payload, &mut f),
        }
        assert_eq!(
            line.contains("NEW-EDGE-REQ"),
            p.header.is_new_edge(),
            "#{n}"
        );

        let (kind, id) = f.rr.expect("every captured payload has a ReqRep layer");
        let rr = between(line, "RR[", ']').expect("RR in text");
        assert_eq!(rr, format!("{kind:?} id={id}"), "#{n}");

        match between(line, "AH[", ']') {
            Some(ah) => {
                let (hops, ttl, src, dst, opts) = f.ah.clone().expect("AH layer");
                let mode = DeliveryMode::from(opts).name().unwrap_or("?");
                assert_eq!(
                    ah,
                    format!("hops={hops} ttl={ttl} src={src} dst={dst} opts={opts}({mode})"),
                    "#{n}"
                );
            }
            None => assert!(f.ah.is_none(), "#{n}"),
        }
        match between(line, "FWD[", ']') {
            Some(fwd) => {
                // The text spells out the mode name after the number.
                let ours = f.fwd.clone().expect("forwarding layer");
                assert!(fwd.starts_with(&ours), "#{n}: {fwd} vs {ours}");
            }
            None => assert!(f.fwd.is_none(), "#{n}"),
        }
        let text_method = between(line, "RPC ['", '\'');
        assert_eq!(text_method, f.method.as_deref(), "#{n}");
        if let Some(m) = f.method {
            *seen_methods.entry(m).or_default() += 1;
        }
    }
    assert_eq!(seen_methods.get(method::START), Some(&50));
    assert_eq!(seen_methods.get(method::CONNECT_TO), Some(&48));
    assert_eq!(seen_methods.get(method::GET_STATUS), Some(&52));
}

#[test]
fn spot_values_from_notes() {
    let packets = decode_all("brunet-ring.pcap", 697);
    // #22: AH exact H3US → C7CZ carrying forwarding leg 1 to H3US + 2, ttl 2, annealing.
    let (_, p22) = &packets[21];
    let PacketBody::Payload(Payload::Ah { header, inner }) = &p22.body else {
        panic!("#22 is AH");
    };
    let h3us: Address = "brunet:node:H3US32RQ7LDDQ464ZJKMP2VWX6LANY5O"
        .parse()
        .unwrap();
    assert_eq!(header.source, h3us);
    assert_eq!(header.mode, DeliveryMode::Exact);
    let Payload::Forward { header: fwd, .. } = inner.as_ref() else {
        panic!("#22 forwards");
    };
    assert_eq!(
        *fwd,
        ForwardRepr::ToForwarder {
            destination: h3us.wrapping_add(brunet_compat::address::RingInt::from_u128(2)),
            ttl: 2,
            mode: DeliveryMode::Annealing,
        }
    );
    // #4: the self-link is refused with ConnectToSelf.
    let x = RpcException::from_adr(packets[3].1.rpc().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((x.code, x.message.as_str()), (Some(16), "You are me: "));
    // #31: Ping reply "".
    assert_eq!(packets[30].1.rpc(), Some(&Adr::str("")));
}

/// The typed link messages re-encode every captured RPC value byte for byte.
#[test]
fn link_messages_round_trip_byte_exact() {
    let mut typed = 0;
    for name in ["brunet-ring.pcap", "brunet-leave.pcap"] {
        for (_, p) in decode_all(name, if name.contains("ring") { 697 } else { 1032 }) {
            let Some(v) = p.rpc() else { continue };
            let bytes = v.to_bytes().unwrap();
            let again = if let Ok(call) = RpcCall::from_adr(v) {
                match LinkRequest::from_call(&call).expect("valid link request") {
                    Some(req) => req.to_call().to_adr(),
                    None => continue, // tunnel.RequestSync
                }
            } else if let Some(x) = RpcException::from_adr(v) {
                x.expect("valid exception").to_adr()
            } else if v.get("local").is_some() {
                LinkMessage::from_adr(v).unwrap().to_adr()
            } else if v.get("neighbors").and_then(Adr::as_map).is_some() {
                StatusMessage::from_adr(v).unwrap().to_adr()
            } else if v.get("target").is_some() {
                ConnectToMessage::from_adr(v).unwrap().to_adr()
            } else {
                continue; // Ping replies and RequestSync maps are plain ADR.
            };
            assert_eq!(again.to_bytes().unwrap(), bytes, "{v:?}");
            typed += 1;
        }
    }
    assert!(typed > 1000, "typed {typed}");
}
