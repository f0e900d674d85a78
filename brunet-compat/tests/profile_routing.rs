//! AH routing in every delivery mode, on one profile node with four structured
//! neighbours: which packets it answers (delivers), and to whom it passes them on.
//!
//! Addresses (first byte; the rest zero): A 0x20 < B 0x30 < us 0x40 < C 0x50 < D 0x60.
//! Each request is a `sys:link.Ping` inside AH from A; a delivery shows as the echoed
//! reply, a forward as the same AH packet with one more hop on a neighbour's socket.

use std::net::SocketAddr;

use brunet_compat::address::{Address, Direction};
use brunet_compat::profile::{Config, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::Adr;
use brunet_compat::wire::ah::{AhRepr, DeliveryMode};
use brunet_compat::wire::link::{LinkMessage, LinkRequest, NodeInfo, StatusMessage};
use brunet_compat::wire::reqrep::{ReqRepRepr, ReqRepType};
use brunet_compat::wire::rpc::RpcCall;
use brunet_compat::wire::udp::UdpHeader;
use brunet_compat::wire::{Packet, PacketBody, Payload, ReqRepBody};

fn at(first: u8) -> Address {
    let mut b = [0u8; 20];
    b[0] = first;
    Address::ah(b)
}

const PEERS: [u8; 4] = [0x20, 0x30, 0x50, 0x60];

fn sock_of(first: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000 + u16::from(first)))
}

fn rpc_payload(kind: ReqRepType, id: i32, value: Adr) -> Payload {
    Payload::ReqRep {
        header: ReqRepRepr { kind, id },
        body: ReqRepBody::Payload(Box::new(Payload::Rpc(value))),
    }
}

struct World {
    node: Node,
    /// Our edge id for each peer, by first byte.
    edges: Vec<(u8, i32)>,
}

impl World {
    fn feed(&mut self, from: u8, p: &Packet) -> Vec<(SocketAddr, Packet)> {
        let data = p.to_bytes().unwrap();
        let input = Input::Datagram {
            from: sock_of(from),
            data: &data,
        };
        self.node.handle_input(Time::from_millis(10), input);
        let mut out = Vec::new();
        loop {
            match self.node.poll_output() {
                Output::Transmit { to, data } => out.push((to, Packet::parse(&data).unwrap())),
                Output::Event(_) => {}
                Output::Timeout(_) => return out,
            }
        }
    }

    fn new() -> World {
        let cfg = Config::new("R", SocketAddr::from(([127, 0, 0, 1], 9999)), 3);
        let mut w = World {
            node: Node::new(cfg, at(0x40), Time::ZERO),
            edges: Vec::new(),
        };
        for first in PEERS {
            let peer = i32::from(first);
            let lm = LinkMessage {
                local: Some(NodeInfo::address_only(at(first))),
                remote: Some(NodeInfo::default()),
                token: None,
                realm: Some("R".into()),
                connection_type: "structured.near".into(),
                attributes: Vec::new(),
            };
            let start = Packet {
                header: UdpHeader {
                    sender: peer,
                    receiver: 0,
                },
                body: PacketBody::Payload(rpc_payload(
                    ReqRepType::Request,
                    1,
                    LinkRequest::Start(lm).to_call().to_adr(),
                )),
            };
            let out = w.feed(first, &start);
            let mine = out[0].1.header.sender;
            let sm = StatusMessage {
                neighbor_type: "structured.near".into(),
                neighbors: Vec::new(),
            };
            let status = Packet {
                header: UdpHeader {
                    sender: peer,
                    receiver: mine,
                },
                body: PacketBody::Payload(rpc_payload(
                    ReqRepType::Request,
                    2,
                    LinkRequest::GetStatus(sm).to_call().to_adr(),
                )),
            };
            w.feed(first, &status);
            w.edges.push((first, mine));
        }
        assert_eq!(w.node.connections().structured().len(), 4);
        w
    }

    /// Sends a Ping (request `id`) from A to `dst` in `mode`; returns (answered, the
    /// sockets it was passed on to).
    fn route(
        &mut self,
        id: i32,
        dst: Address,
        mode: DeliveryMode,
        hops: i16,
        ttl: i16,
    ) -> (bool, Vec<SocketAddr>) {
        let ping = RpcCall::new("sys:link.Ping", vec![Adr::str("x")]).to_adr();
        let hdr = AhRepr {
            hops,
            ttl,
            source: at(0x20),
            destination: dst,
            mode,
        };
        let mine = self.edges[0].1;
        let p = Packet {
            header: UdpHeader {
                sender: 0x20,
                receiver: mine,
            },
            body: PacketBody::Payload(Payload::Ah {
                header: hdr,
                inner: Box::new(rpc_payload(ReqRepType::Request, id, ping)),
            }),
        };
        let out = self.feed(0x20, &p);
        let mut answered = false;
        let mut passed = Vec::new();
        for (to, q) in out {
            let PacketBody::Payload(Payload::Ah { header, inner }) = &q.body else {
                continue;
            };
            match inner.as_ref() {
                Payload::ReqRep { header: rr, .. } if rr.kind == ReqRepType::Reply => {
                    assert_eq!((rr.id, header.destination), (id, at(0x20)));
                    assert_eq!(header.mode, DeliveryMode::Exact, "answers go back exact");
                    answered = true;
                }
                _ => {
                    assert_eq!((header.hops, header.destination), (hops + 1, dst));
                    passed.push(to);
                }
            }
        }
        (answered, passed)
    }
}

#[test]
fn every_delivery_mode() {
    let mut w = World::new();
    let c = sock_of(0x50);
    let d = sock_of(0x60);
    let (us, nobody) = (true, Vec::<SocketAddr>::new());
    use DeliveryMode::*;
    // Exact: only the destination answers; a neighbour gets it directly; next to an
    // unlinked destination, annealing passes it to the other side of it.
    assert_eq!(w.route(1, at(0x40), Exact, 1, 5), (us, nobody.clone()));
    assert_eq!(w.route(2, at(0x50), Exact, 1, 5), (false, vec![c]));
    assert_eq!(w.route(3, at(0x44), Exact, 1, 5), (false, vec![c]));
    // Greedy: the closest answers, others pass it closer; at the TTL only the closest.
    assert_eq!(w.route(4, at(0x44), Greedy, 1, 5), (us, nobody.clone()));
    assert_eq!(w.route(5, at(0x4e), Greedy, 1, 5), (false, vec![c]));
    assert_eq!(w.route(6, at(0x4e), Greedy, 5, 5), (false, nobody.clone()));
    // Last: whoever holds it at the TTL answers.
    assert_eq!(w.route(7, at(0x4e), Last, 5, 5), (us, nobody.clone()));
    assert_eq!(w.route(8, at(0x4e), Last, 1, 5), (false, vec![c]));
    // Default and annealing: both nodes bracketing the destination answer.
    assert_eq!(w.route(9, at(0x44), Default, 1, 5), (us, vec![c]));
    assert_eq!(w.route(10, at(0x44), Annealing, 1, 5), (us, vec![c]));
    assert_eq!(w.route(11, at(0x58), Default, 1, 5), (false, vec![c]));
    // Path: every node on the way answers and passes it on.
    assert_eq!(w.route(12, at(0x5c), Path, 1, 5), (us, vec![d]));
    // Directional: one step along the side, answered at the TTL.
    let left = Address::directional(Direction::Left);
    let right = Address::directional(Direction::Right);
    assert_eq!(w.route(13, left, Last, 1, 2), (false, vec![c]));
    assert_eq!(w.route(14, right, Last, 1, 2), (false, vec![sock_of(0x30)]));
    assert_eq!(w.route(15, left, Last, 2, 2), (us, nobody.clone()));
    assert_eq!(w.route(16, left, Path, 1, 3), (us, vec![c]));
}
