//! Unit tests of the profile's pieces, driving one node with hand-made datagrams;
//! whole-ring and capture tests are in `tests/profile_*.rs`.

use std::net::SocketAddr;

use super::reqrep::{header, rpc_payload};
use super::*;
use crate::ring::Time;
use crate::wire::adr::Adr;
use crate::wire::link::{ErrorCode, LinkMessage, LinkRequest, NodeInfo, StatusMessage};
use crate::wire::reqrep::ReqRepType;
use crate::wire::rpc::{RpcCall, RpcException};
use crate::wire::udp::{Control, UdpDatagram, UdpHeader};
use crate::wire::{Packet, PacketBody};

const PEER_SOCK: &str = "127.0.0.1:9";

fn me() -> Address {
    Address::ah([0x40; 20])
}

fn peer() -> Address {
    Address::ah([0x80; 20])
}

fn node() -> Node {
    let cfg = Config::new("R", "127.0.0.1:1".parse().unwrap(), 1);
    let mut n = Node::new(cfg, me(), Time::ZERO);
    drain(&mut n);
    n
}

fn drain(n: &mut Node) -> Vec<Output> {
    let mut v = Vec::new();
    loop {
        match n.poll_output() {
            Output::Timeout(_) => return v,
            o => v.push(o),
        }
    }
}

fn datagram(sender: i32, receiver: i32, kind: ReqRepType, id: i32, call: &RpcCall) -> Vec<u8> {
    let mut d = Vec::new();
    UdpHeader { sender, receiver }.emit(&mut d);
    d.extend(rpc_payload(kind, id, &call.to_adr()).unwrap());
    d
}

fn start(realm: &str, from: Address) -> RpcCall {
    LinkRequest::Start(LinkMessage {
        local: Some(NodeInfo::address_only(from)),
        remote: Some(NodeInfo::default()),
        token: Some(from.to_string()),
        realm: Some(realm.into()),
        connection_type: "structured.near".into(),
        attributes: Vec::new(),
    })
    .to_call()
}

/// Feeds `d` from the peer's socket; returns the datagrams sent back and the events.
fn feed(n: &mut Node, d: &[u8]) -> (Vec<Packet>, Vec<Event>) {
    let from: SocketAddr = PEER_SOCK.parse().unwrap();
    n.handle_input(Time::from_millis(10), Input::Datagram { from, data: d });
    let mut sent = Vec::new();
    let mut events = Vec::new();
    for o in drain(n) {
        match o {
            Output::Transmit { to, data } => {
                assert_eq!(to, from);
                sent.push(Packet::parse(&data).unwrap());
            }
            Output::Event(e) => events.push(e),
            Output::Timeout(_) => {}
        }
    }
    (sent, events)
}

fn exception_code(p: &Packet) -> Option<i32> {
    RpcException::from_adr(p.rpc()?)?.ok()?.code
}

#[test]
fn start_on_a_new_edge_reflects_and_is_answered_once() {
    let mut n = node();
    let d = datagram(77, 0, ReqRepType::Request, 5, &start("R", peer()));
    let (sent, _) = feed(&mut n, &d);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header.receiver, 77);
    let lm = LinkMessage::from_adr(sent[0].rpc().unwrap()).unwrap();
    assert_eq!(lm.local.unwrap().address, Some(me()));
    let seen = &lm.remote.unwrap().transports[0];
    assert_eq!(seen.to_string(), "brunet.udp://127.0.0.1:9");
    // The resent request comes back on the same edge, answered from the cache.
    let (again, _) = feed(&mut n, &d);
    assert_eq!(again, sent);
    assert_eq!(n.stats().cached_replies, 1);
    assert_eq!(n.edges().iter().count(), 1);
}

#[test]
fn start_errors_carry_brunet_codes() {
    let mut n = node();
    let cases = [
        (start("Other", peer()), ErrorCode::RealmMismatch),
        (start("R", me()), ErrorCode::ConnectToSelf),
    ];
    for (i, (call, want)) in cases.into_iter().enumerate() {
        let d = datagram(100 + i as i32, 0, ReqRepType::Request, 9, &call);
        let (sent, _) = feed(&mut n, &d);
        assert_eq!(exception_code(&sent[0]), Some(want.into()), "{want:?}");
    }
    let call = RpcCall::new("nobody.Knows", vec![]);
    let (sent, _) = feed(&mut n, &datagram(200, 0, ReqRepType::Request, 1, &call));
    assert_eq!(exception_code(&sent[0]), Some(-32601));
}

#[test]
fn get_status_completes_the_handshake_and_close_ends_it() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    let sm = StatusMessage {
        neighbor_type: "structured.near".into(),
        neighbors: vec![],
    };
    let status = LinkRequest::GetStatus(sm).to_call();
    let (sent, events) = feed(&mut n, &datagram(77, mine, ReqRepType::Request, 6, &status));
    assert!(StatusMessage::from_adr(sent[0].rpc().unwrap()).is_ok());
    assert_eq!(
        events,
        vec![Event::Connected {
            peer: peer(),
            kind: "structured.near".into()
        }]
    );
    assert_eq!(n.left(), Some(peer()));
    // A second Start for the same peer and type on another edge: already connected.
    let (sent, _) = feed(
        &mut n,
        &datagram(78, 0, ReqRepType::Request, 7, &start("R", peer())),
    );
    let answer = sent.iter().find(|p| p.header.receiver == 78).unwrap();
    assert_eq!(
        exception_code(answer),
        Some(ErrorCode::AlreadyConnected.into())
    );
    // The existing connection is pinged, in case it is stale (as Brunet does).
    let pinged = sent.iter().any(|p| {
        p.header.receiver == 77
            && p.rpc()
                .and_then(|v| RpcCall::from_adr(v).ok())
                .is_some_and(|c| c.method == "sys:link.Ping")
    });
    assert!(pinged, "{sent:?}");
    // The ack clears the cache entry; Close answers {} and drops the connection.
    let mut ack = Vec::new();
    UdpHeader {
        sender: 77,
        receiver: mine,
    }
    .emit(&mut ack);
    ack.extend(header(ReqRepType::ReplyAck, 6).unwrap());
    assert!(feed(&mut n, &ack).0.is_empty());
    let close = LinkRequest::Close(Default::default()).to_call();
    let (sent, events) = feed(&mut n, &datagram(77, mine, ReqRepType::Request, 8, &close));
    assert_eq!(sent[0].rpc(), Some(&Adr::Map(vec![])));
    assert!(matches!(events[..], [Event::Disconnected { .. }]));
    assert_eq!(n.left(), None);
}

#[test]
fn edge_closed_is_answered_only_for_recently_closed_pairs() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    let mut closed = Vec::new();
    UdpHeader::control(77, mine).emit(&mut closed);
    Control::EdgeClosed.emit(&mut closed).unwrap();
    assert!(feed(&mut n, &closed).0.is_empty());
    assert_eq!(n.edges().iter().count(), 0);
    let ping = LinkRequest::Ping(Adr::str("")).to_call();
    let (sent, _) = feed(&mut n, &datagram(77, mine, ReqRepType::Request, 9, &ping));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, PacketBody::Control(Control::EdgeClosed));
    let (sent, _) = feed(&mut n, &datagram(55, 1234, ReqRepType::Request, 9, &ping));
    assert!(sent.is_empty(), "an unknown pair gets no answer");
    assert!(matches!(
        UdpDatagram::parse(&[0xff; 8]),
        Ok(UdpDatagram::HeaderOnly(_))
    ));
    assert!(
        feed(&mut n, &[0xff; 8]).0.is_empty(),
        "wake-ups are ignored"
    );
}

#[test]
fn requests_are_resent_then_fail() {
    let mut n = node();
    let t = n.echo(Time::ZERO, peer(), "x");
    assert!(drain(&mut n).is_empty(), "no route: nothing leaves");
    let mut at = Time::ZERO;
    let mut failed = false;
    for _ in 0..10 {
        at = at + std::time::Duration::from_secs(6);
        n.handle_input(at, Input::Timeout);
        failed |= drain(&mut n).contains(&Output::Event(Event::EchoFailed { token: t }));
    }
    assert!(failed);
    assert_eq!(n.stats().resent, 5);
}

#[test]
fn negative_sender_ids_open_no_edge() {
    // A negative id would make our EdgeClosed answers look like data (found by fuzzing).
    let mut n = node();
    let d = datagram(-5, 0, ReqRepType::Request, 5, &start("R", peer()));
    assert_eq!(feed(&mut n, &d), (vec![], vec![]));
    assert_eq!(n.edges().iter().count(), 0);
    assert_eq!(n.stats().unknown_edge, 1);
}

#[test]
fn malformed_ah_payloads_are_neither_delivered_nor_relayed() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    let mut d = Vec::new();
    UdpHeader {
        sender: 77,
        receiver: mine,
    }
    .emit(&mut d);
    d.push(2);
    crate::wire::ah::AhRepr {
        hops: 1,
        ttl: 5,
        source: peer(),
        destination: me(),
        mode: crate::wire::ah::DeliveryMode::Exact,
    }
    .emit(&mut d);
    d.extend_from_slice(b"r\0\x01\0\0\0\x01p\0(");
    assert_eq!(feed(&mut n, &d), (vec![], vec![]));
    assert_eq!(n.stats().malformed, 1);
    assert_eq!(n.stats().delivered, 0);
}

#[test]
fn a_moved_peer_is_rehomed_and_told() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    // The peer's NAT mapping changed: the same ids arrive from another port.
    let moved: SocketAddr = "127.0.0.1:10".parse().unwrap();
    let ping = LinkRequest::Ping(Adr::str("p")).to_call();
    let d = datagram(77, mine, ReqRepType::Request, 9, &ping);
    n.handle_input(
        Time::from_millis(20),
        Input::Datagram {
            from: moved,
            data: &d,
        },
    );
    let out: Vec<(SocketAddr, Packet)> = drain(&mut n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit { to, data } => Some((to, Packet::parse(&data).unwrap())),
            _ => None,
        })
        .collect();
    assert!(out.iter().all(|(to, _)| *to == moved), "{out:?}");
    let announce = out.iter().find_map(|(_, p)| match &p.body {
        PacketBody::Control(c) => c.remote_ta().map(str::to_owned),
        _ => None,
    });
    assert_eq!(announce.as_deref(), Some("brunet.udp://127.0.0.1:10"));
    assert!(out.iter().any(|(_, p)| p.rpc() == Some(&Adr::str("p"))));
}

#[test]
fn a_leaving_node_says_close_and_edge_closed_then_goes_quiet() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    let sm = StatusMessage {
        neighbor_type: "structured.near".into(),
        neighbors: vec![],
    };
    let status = LinkRequest::GetStatus(sm).to_call();
    feed(&mut n, &datagram(77, mine, ReqRepType::Request, 6, &status));
    n.leave(Time::from_millis(30));
    let out = drain(&mut n);
    let close = out.iter().any(|o| {
        matches!(o, Output::Transmit { data, .. }
        if Packet::parse(data).ok().and_then(|p| p.rpc().cloned())
            .and_then(|v| RpcCall::from_adr(&v).ok())
            .is_some_and(|c| c.method == "sys:link.Close"))
    });
    let closed = out.iter().any(|o| {
        matches!(o, Output::Transmit { data, .. }
        if Packet::parse(data).is_ok_and(|p| p.body == PacketBody::Control(Control::EdgeClosed)))
    });
    assert!(close && closed, "{out:?}");
    assert_eq!(n.poll_output(), Output::Timeout(Time::NEVER));
    let ping = LinkRequest::Ping(Adr::str("")).to_call();
    assert_eq!(
        feed(&mut n, &datagram(78, 0, ReqRepType::Request, 1, &ping)),
        (vec![], vec![])
    );
}

#[test]
fn the_edge_table_is_bounded() {
    let mut n = node();
    let ping = LinkRequest::Ping(Adr::str("")).to_call();
    for i in 0..(edge::MAX_EDGES as i32 + 10) {
        feed(&mut n, &datagram(i + 1, 0, ReqRepType::Request, 1, &ping));
    }
    assert_eq!(n.edges().iter().count(), edge::MAX_EDGES);
    assert_eq!(n.stats().unknown_edge, 10);
}

#[test]
fn crawler_methods_answer_over_any_route() {
    let mut n = node();
    let (sent, _) = feed(
        &mut n,
        &datagram(77, 0, ReqRepType::Request, 5, &start("R", peer())),
    );
    let mine = sent[0].header.sender;
    let sm = StatusMessage {
        neighbor_type: "structured.near".into(),
        neighbors: vec![],
    };
    feed(
        &mut n,
        &datagram(
            77,
            mine,
            ReqRepType::Request,
            6,
            &LinkRequest::GetStatus(sm).to_call(),
        ),
    );
    let ask = |n: &mut Node, id, req: LinkRequest| {
        let (sent, _) = feed(
            n,
            &datagram(77, mine, ReqRepType::Request, id, &req.to_call()),
        );
        sent.into_iter().find_map(|p| p.rpc().cloned()).unwrap()
    };
    let neighbours = ask(&mut n, 10, LinkRequest::GetNeighbors);
    assert_eq!(neighbours.get("self"), Some(&Adr::Str(me().to_string())));
    assert_eq!(neighbours.get("left"), Some(&Adr::Str(peer().to_string())));
    assert_eq!(neighbours.get("right"), Some(&Adr::Str(peer().to_string())));
    let info = NodeInfo::from_adr(&ask(&mut n, 11, LinkRequest::GetNodeInfo)).unwrap();
    assert_eq!(info.address, Some(me()));
    assert_eq!(info.transports[0].to_string(), "brunet.udp://127.0.0.1:1");
    // Our only address is loopback, which Brunet leaves out.
    assert_eq!(
        ask(&mut n, 12, LinkRequest::GetLocalIpAddresses),
        Adr::List(vec![])
    );
}
