//! Replay: every request in the Brunet captures, fed to a profile node playing the
//! receiving node's role (its address, realm and port), gets an answer of the right shape.
//!
//! A request on an existing edge needs that edge: the sender is first linked to the node
//! (as a leaf, on an edge that carries the captured sender id), and the captured datagram
//! is re-addressed to the node's id for it. Nodes named in an AH header or forwarding leg
//! are linked the same way, so the answer has somewhere to go. Relayed requests (AH exact
//! or greedy to another node) must be passed on with one more hop instead.

mod capture;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use brunet_compat::address::Address;
use brunet_compat::profile::{Config, Event, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::Adr;
use brunet_compat::wire::ah::{AhRepr, DeliveryMode};
use brunet_compat::wire::forward::ForwardRepr;
use brunet_compat::wire::link::{
    ConnectToMessage, LinkMessage, LinkRequest, NodeInfo, StatusMessage,
};
use brunet_compat::wire::reqrep::{ReqRepRepr, ReqRepType};
use brunet_compat::wire::rpc::{RpcCall, RpcException};
use brunet_compat::wire::udp::UdpHeader;
use brunet_compat::wire::{Packet, PacketBody, Payload, ReqRepBody};

const REALM: &str = "LoopbackRing";

fn sock(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn port_of(a: &Address) -> Option<u16> {
    (15000..15005).find(|p| capture::address_of(*p) == *a)
}

/// A captured request: its id, call, and the AH header and forwarding leg around it.
struct Request {
    id: i32,
    call: RpcCall,
    ah: Option<AhRepr>,
    fwd: Option<ForwardRepr>,
}

fn request_in(p: &Payload, ah: Option<AhRepr>, fwd: Option<ForwardRepr>) -> Option<Request> {
    match p {
        Payload::Ah { header, inner } => request_in(inner, Some(*header), fwd),
        Payload::Forward { header, inner } => request_in(inner, ah, Some(*header)),
        Payload::ReqRep { header, body } => {
            let ReqRepRepr { kind, id } = *header;
            if !matches!(kind, ReqRepType::Request | ReqRepType::LossyRequest) {
                return None;
            }
            let ReqRepBody::Payload(inner) = body else {
                return None;
            };
            let Payload::Rpc(v) = inner.as_ref() else {
                return None;
            };
            let call = RpcCall::from_adr(v).ok()?;
            Some(Request { id, call, ah, fwd })
        }
        _ => None,
    }
}

/// A ReqRep reply with `id` anywhere in `p`.
fn reply_in(p: &Payload, id: i32) -> Option<&Adr> {
    match p {
        Payload::Ah { inner, .. } | Payload::Forward { inner, .. } => reply_in(inner, id),
        Payload::ReqRep { header, body } if header.kind == ReqRepType::Reply && header.id == id => {
            match body {
                ReqRepBody::Payload(inner) => match inner.as_ref() {
                    Payload::Rpc(v) => Some(v),
                    _ => None,
                },
                ReqRepBody::Raw(_) => None,
            }
        }
        _ => None,
    }
}

struct Role {
    node: Node,
    sent: Vec<(SocketAddr, Packet)>,
    events: Vec<Event>,
}

impl Role {
    fn new(port: u16) -> Role {
        let cfg = Config::new(REALM, sock(port), u64::from(port));
        let node = Node::new(cfg, capture::address_of(port), Time::ZERO);
        let mut r = Role {
            node,
            sent: Vec::new(),
            events: Vec::new(),
        };
        r.drain();
        r
    }

    fn drain(&mut self) {
        loop {
            match self.node.poll_output() {
                Output::Transmit { to, data } => {
                    let p = Packet::parse(&data).expect("our datagrams decode");
                    assert_eq!(p.to_bytes().unwrap(), data, "our datagrams re-encode");
                    self.sent.push((to, p));
                }
                Output::Event(e) => self.events.push(e),
                Output::Timeout(_) => return,
            }
        }
    }

    fn feed(&mut self, from: u16, data: &[u8]) {
        let at = Time::from_millis(100);
        let input = Input::Datagram {
            from: sock(from),
            data,
        };
        self.node.handle_input(at, input);
        self.drain();
    }

    /// Links `peer` (at its capture port) as a leaf on an edge with its id `peer_id`;
    /// returns our id for that edge.
    fn link_leaf(&mut self, peer: Address, peer_id: i32) -> i32 {
        self.link(peer, peer_id, "leaf")
    }

    /// Links `peer` with connection type `kind`; returns our edge id.
    fn link(&mut self, peer: Address, peer_id: i32, kind: &str) -> i32 {
        let port = port_of(&peer).expect("capture node");
        let lm = LinkMessage {
            local: Some(NodeInfo::address_only(peer)),
            remote: Some(NodeInfo::default()),
            token: Some(peer.to_string()),
            realm: Some(REALM.into()),
            connection_type: kind.into(),
            attributes: Vec::new(),
        };
        let start = datagram(peer_id, 0, 1, &LinkRequest::Start(lm).to_call());
        self.feed(port, &start);
        let mine = self
            .sent
            .iter()
            .rev()
            .find(|(_, p)| p.header.receiver == peer_id)
            .map(|(_, p)| p.header.sender)
            .expect("Start answered");
        let sm = StatusMessage {
            neighbor_type: kind.into(),
            neighbors: Vec::new(),
        };
        self.feed(
            port,
            &datagram(peer_id, mine, 2, &LinkRequest::GetStatus(sm).to_call()),
        );
        let up = Event::Connected {
            peer,
            kind: kind.into(),
        };
        assert!(self.events.contains(&up), "leaf link to {peer}");
        mine
    }
}

fn datagram(sender: i32, receiver: i32, id: i32, call: &RpcCall) -> Vec<u8> {
    let p = Packet {
        header: UdpHeader { sender, receiver },
        body: PacketBody::Payload(Payload::ReqRep {
            header: ReqRepRepr {
                kind: ReqRepType::Request,
                id,
            },
            body: ReqRepBody::Payload(Box::new(Payload::Rpc(call.to_adr()))),
        }),
    };
    p.to_bytes().unwrap()
}

/// Checks that `v` is a well-formed answer to `req` from `me`.
fn check_shape(req: &Request, v: &Adr, me: Address, from_port: u16) -> Result<(), String> {
    let code = RpcException::from_adr(v)
        .and_then(Result::ok)
        .and_then(|x| x.code);
    let arg = req.call.args.first();
    let bad = |what: &str| Err(format!("{what}: {v:?}"));
    match req.call.method.as_str() {
        "sys:link.Start" => {
            if let Some(c) = code {
                let link_errors = [3, 16, 17, 18, 19, 20];
                return if link_errors.contains(&c) {
                    Ok(())
                } else {
                    bad("Start error")
                };
            }
            let lm = LinkMessage::from_adr(v).map_err(|e| e.to_string())?;
            let asked = LinkMessage::from_adr(arg.ok_or("no arg")?).map_err(|e| e.to_string())?;
            let seen = lm.remote.and_then(|r| r.transports.first().cloned());
            let ok = lm.local.and_then(|l| l.address) == Some(me)
                && lm.token == asked.token
                && lm.realm.as_deref() == Some(REALM)
                && lm.connection_type == asked.connection_type
                && seen.and_then(|t| t.udp_socket_addr()) == Some(sock(from_port));
            if ok { Ok(()) } else { bad("LinkMessage") }
        }
        "sys:link.GetStatus" => {
            let sm = StatusMessage::from_adr(v).map_err(|e| e.to_string())?;
            let asked = StatusMessage::from_adr(arg.ok_or("no arg")?).map_err(|e| e.to_string())?;
            if sm.neighbor_type == asked.neighbor_type {
                Ok(())
            } else {
                bad("StatusMessage")
            }
        }
        "sys:link.Ping" if Some(v) == arg => Ok(()),
        "sys:link.Close" if *v == Adr::Map(Vec::new()) => Ok(()),
        "sys:ctm.ConnectTo" => {
            let asked =
                ConnectToMessage::from_adr(arg.ok_or("no arg")?).map_err(|e| e.to_string())?;
            if asked.target.address == Some(me) {
                return if code == Some(-32608) {
                    Ok(())
                } else {
                    bad("CTM to self")
                };
            }
            let ctm = ConnectToMessage::from_adr(v).map_err(|e| e.to_string())?;
            let ok = ctm.target.address == Some(me)
                && !ctm.target.transports.is_empty()
                && ctm.token == asked.token
                && ctm.connection_type == asked.connection_type;
            if ok { Ok(()) } else { bad("CTM reply") }
        }
        "tunnel.RequestSync" => {
            let entries = v.as_map().ok_or("not a map")?;
            let ok = !entries.is_empty()
                && entries.iter().all(|(k, e)| {
                    k.as_bytes().is_some_and(|b| b.len() == 20)
                        && e.get("ct").and_then(Adr::as_i64).is_some()
                        && e.get("ta").and_then(Adr::as_str).is_some()
                });
            if ok { Ok(()) } else { bad("RequestSync") }
        }
        _ => bad("unexpected answer"),
    }
}

/// True when `req` only passes through the receiving node in the capture.
fn relayed(req: &Request, me: Address) -> bool {
    req.ah.is_some_and(|h| {
        (h.destination.direction().is_some() && h.hops < h.ttl)
            || h.destination != me
                && matches!(h.mode, DeliveryMode::Exact | DeliveryMode::Greedy)
                && !matches!(req.fwd, Some(ForwardRepr::FromForwarder { .. }))
    })
}

#[test]
fn every_captured_request_is_answered_in_shape() {
    let mut replayed = 0;
    let mut methods = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for name in capture::CAPTURES {
        for d in capture::datagrams(name) {
            let Ok(p) = Packet::parse(&d.payload) else {
                continue;
            };
            let PacketBody::Payload(payload) = &p.body else {
                continue;
            };
            let Some(req) = request_in(payload, None, None) else {
                continue;
            };
            // Resends are the same bytes: replay each distinct datagram once.
            if !seen.insert((d.dst_port, d.payload.clone())) {
                continue;
            }
            let me = capture::address_of(d.dst_port);
            let mut role = Role::new(d.dst_port);
            let mut data = d.payload.clone();
            if !p.header.is_new_edge() {
                let sender = capture::address_of(d.src_port);
                let mut others: Vec<Address> = Vec::new();
                if let Some(h) = req.ah {
                    others.extend([h.source, h.destination]);
                }
                if let Some(ForwardRepr::FromForwarder { origin }) = req.fwd {
                    others.push(origin);
                }
                let mine = role.link_leaf(sender, p.header.sender);
                for (i, o) in others.into_iter().enumerate() {
                    let linked = role.node.connections().any(&o).is_some();
                    if o != me && !linked && port_of(&o).is_some() {
                        role.link_leaf(o, 5000 + i as i32);
                    }
                }
                if let Some(h) = req.ah.filter(|h| h.destination.direction().is_some()) {
                    // A directional packet walks on to our nearest structured neighbour.
                    let next = (15000..15005)
                        .map(capture::address_of)
                        .find(|a| *a != me && *a != sender && *a != h.source);
                    role.link(next.expect("a third node"), 7000, "structured.near");
                }
                data[4..8].copy_from_slice(&mine.to_be_bytes());
            }
            let before = role.sent.len();
            role.feed(d.src_port, &data);
            let sent = &role.sent[before..];
            let frame = format!("{name} #{}", d.frame);
            let reply = sent.iter().find_map(|(_, out)| match &out.body {
                PacketBody::Payload(pl) => reply_in(pl, req.id),
                _ => None,
            });
            let delivered = reply.is_some();
            if let Some(reply) = reply {
                if let Err(e) = check_shape(&req, reply, me, d.src_port) {
                    panic!("{frame}: {} answered badly: {e}", req.call.method);
                }
            } else {
                // Not for us (in our world): it must be passed on with one more hop.
                assert!(
                    relayed(&req, me),
                    "{frame}: no answer to {}",
                    req.call.method
                );
                let h = req.ah.unwrap();
                let passed = sent.iter().any(|(_, out)| match &out.body {
                    PacketBody::Payload(Payload::Ah { header, .. }) => {
                        header.hops == h.hops + 1 && header.destination == h.destination
                    }
                    _ => false,
                });
                assert!(passed, "{frame}: relayed request not passed on");
            }
            if req.call.method == "sys:ctm.ConnectTo" && delivered {
                let ctm = ConnectToMessage::from_adr(&req.call.args[0]).unwrap();
                if ctm.target.address != Some(me) {
                    let start = sent.iter().any(|(to, out)| {
                        out.header.is_new_edge()
                            && out
                                .rpc()
                                .and_then(|v| RpcCall::from_adr(v).ok())
                                .is_some_and(|c| c.method == "sys:link.Start")
                            && ctm
                                .target
                                .transports
                                .iter()
                                .any(|t| t.udp_socket_addr() == Some(*to))
                    });
                    assert!(start, "{frame}: connect-to-me not followed by a link back");
                }
            }
            methods.insert(req.call.method.clone());
            replayed += 1;
        }
    }
    let want: BTreeSet<String> = [
        "sys:ctm.ConnectTo",
        "sys:link.Close",
        "sys:link.GetStatus",
        "sys:link.Ping",
        "sys:link.Start",
        "tunnel.RequestSync",
    ]
    .map(String::from)
    .into();
    assert_eq!(methods, want);
    // Every distinct request datagram of both captures (1003 requests with resends).
    assert_eq!(replayed, 517);
}
