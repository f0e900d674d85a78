//! The other direction of the replay: a profile node plays C7CZ (port 15002) joining
//! through H3US (port 15000) as in `brunet-ring.pcap`, and H3US's part is played by the
//! captured datagrams themselves (#12, #15, #34, #55, #73), re-addressed to the ids our
//! node chose. The node must accept Brunet's real answers: the leaf link (Start reply
//! with PathEdgeListener's `/` addresses, status), the connect-to-me answer that comes
//! back as a second forwarding leg, and the structured link that follows.

mod capture;

use std::net::SocketAddr;

use brunet_compat::profile::{Config, Event, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::ah::DeliveryMode;
use brunet_compat::wire::forward::ForwardRepr;
use brunet_compat::wire::link::LinkMessage;
use brunet_compat::wire::reqrep::ReqRepType;
use brunet_compat::wire::rpc::RpcCall;
use brunet_compat::wire::ta::TransportAddress;
use brunet_compat::wire::{Packet, PacketBody, Payload, ReqRepBody};

fn sock(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The innermost request or reply in `p` (through AH and forwarding), mutable.
fn reqrep_mut(
    p: &mut Payload,
) -> Option<(&mut brunet_compat::wire::reqrep::ReqRepRepr, &ReqRepBody)> {
    match p {
        Payload::Ah { inner, .. } | Payload::Forward { inner, .. } => reqrep_mut(inner),
        Payload::ReqRep { header, body } => Some((header, body)),
        _ => None,
    }
}

/// The request in a datagram we sent: (type, id, call).
fn request(p: &Packet) -> Option<(ReqRepType, i32, RpcCall)> {
    let PacketBody::Payload(payload) = &p.body else {
        return None;
    };
    let mut payload = payload.clone();
    let (h, body) = reqrep_mut(&mut payload)?;
    let ReqRepBody::Payload(inner) = body else {
        return None;
    };
    let Payload::Rpc(v) = inner.as_ref() else {
        return None;
    };
    Some((h.kind, h.id, RpcCall::from_adr(v).ok()?))
}

struct Harness {
    node: Node,
    now: Time,
    sent: Vec<(SocketAddr, Packet)>,
    events: Vec<Event>,
    frames: Vec<capture::Datagram>,
}

impl Harness {
    fn drain(&mut self) {
        loop {
            match self.node.poll_output() {
                Output::Transmit { to, data } => self
                    .sent
                    .push((to, Packet::parse(&data).expect("valid datagram"))),
                Output::Event(e) => self.events.push(e),
                Output::Timeout(_) => return,
            }
        }
    }

    /// The last request for `method` we sent, with its datagram.
    fn last_request(&self, method: &str) -> (SocketAddr, Packet, i32) {
        self.sent
            .iter()
            .rev()
            .find_map(|(to, p)| {
                let (kind, id, call) = request(p)?;
                (kind == ReqRepType::Request && call.method == method).then(|| (*to, p.clone(), id))
            })
            .unwrap_or_else(|| panic!("no {method} sent: {:#?}", self.sent))
    }

    /// Feeds capture frame `frame` (sent by H3US) re-addressed to our edge `edge` (and
    /// H3US's id for it) and our request `id`.
    fn answer(&mut self, frame: usize, edge: i32, id: i32) {
        let d = &self.frames[frame - 1];
        assert_eq!((d.src_port, d.dst_port), (15000, 15002), "frame #{frame}");
        let mut p = Packet::parse(&d.payload).expect("capture decodes");
        p.header.receiver = edge;
        // H3US's id for the edge: the one the first answer on it gave.
        let known = self.node.edges().get(edge).map_or(0, |e| e.remote_id);
        if known != 0 {
            p.header.sender = known;
        }
        let PacketBody::Payload(payload) = &mut p.body else {
            panic!("frame #{frame} carries no payload");
        };
        let (h, _) = reqrep_mut(payload).expect("a reply");
        assert_eq!(h.kind, ReqRepType::Reply, "frame #{frame}");
        h.id = id;
        let data = p.to_bytes().unwrap();
        if frame == 55 {
            eprintln!("FEED55 {:?}", Packet::parse(&data).unwrap());
        }
        self.now = self.now + std::time::Duration::from_millis(5);
        let input = Input::Datagram {
            from: sock(15000),
            data: &data,
        };
        self.node.handle_input(self.now, input);
        self.drain();
    }
}

#[test]
fn a_profile_node_joins_through_a_captured_brunet_node() {
    let h3us = capture::address_of(15000);
    let c7cz = capture::address_of(15002);
    let mut cfg = Config::new("LoopbackRing", sock(15002), 2);
    cfg.bootstrap = vec![TransportAddress::udp_socket(sock(15000))];
    let mut h = Harness {
        node: Node::new(cfg, c7cz, Time::ZERO),
        now: Time::ZERO,
        sent: Vec::new(),
        events: Vec::new(),
        frames: capture::datagrams("brunet-ring.pcap"),
    };
    h.node.handle_input(Time::ZERO, Input::Timeout);
    h.drain();

    // Leaf link: Start on a new edge, answered by #12; GetStatus, answered by #15.
    let (to, start, id) = h.last_request("sys:link.Start");
    assert_eq!((to, start.header.receiver), (sock(15000), 0));
    let leaf_edge = start.header.sender;
    h.answer(12, leaf_edge, id);
    let (_, _, id) = h.last_request("sys:link.GetStatus");
    h.answer(15, leaf_edge, id);
    let leaf_up = Event::Connected {
        peer: h3us,
        kind: "leaf".into(),
    };
    assert!(h.events.contains(&leaf_up), "{:#?}", h.events);
    // H3US told us how it sees us, with PathEdgeListener's "/".
    let seen: TransportAddress = "brunet.udp://127.0.0.1:15002/".parse().unwrap();
    assert!(h.events.contains(&Event::Reflected { ta: seen }));

    // Through the new leaf: connect-to-me to our address + 2, forwarded by H3US (#28).
    let (_, ctm, id) = h.last_request("sys:ctm.ConnectTo");
    let PacketBody::Payload(Payload::Ah { header, inner }) = &ctm.body else {
        panic!("CTM not routed: {ctm:?}");
    };
    assert_eq!(
        (header.destination, header.mode),
        (h3us, DeliveryMode::Exact)
    );
    let Payload::Forward { header: fwd, .. } = inner.as_ref() else {
        panic!("CTM not forwarded: {inner:?}");
    };
    let plus_two = c7cz.wrapping_add(brunet_compat::address::RingInt::from_u128(2));
    assert!(
        matches!(fwd, ForwardRepr::ToForwarder { destination, mode: DeliveryMode::Annealing, .. }
            if *destination == plus_two)
    );
    // #34: H3US answers as the second forwarding leg; we link to it as structured.near.
    h.answer(34, leaf_edge, id);
    let (to, start, id) = h.last_request("sys:link.Start");
    assert_eq!((to, start.header.receiver), (sock(15000), 0));
    let (_, _, call) = request(&start).unwrap();
    let lm = LinkMessage::from_adr(&call.args[0]).unwrap();
    assert_eq!(lm.remote.and_then(|r| r.address), Some(h3us));
    assert_eq!(lm.connection_type, "structured.near");
    let near_edge = start.header.sender;
    h.answer(55, near_edge, id);
    eprintln!(
        "AFTER55 edges {:?} outstanding {} events {:?} linking {}",
        h.node
            .edges()
            .iter()
            .map(|e| (e.id, e.remote_id, e.addr))
            .collect::<Vec<_>>(),
        h.node.reqrep().outstanding(),
        h.events,
        h.node.linking()
    );
    let (_, _, id) = h.last_request("sys:link.GetStatus");
    h.answer(73, near_edge, id);
    let near_up = Event::Connected {
        peer: h3us,
        kind: "structured.near".into(),
    };
    assert!(h.events.contains(&near_up), "{:#?}", h.events);
    assert_eq!((h.node.left(), h.node.right()), (Some(h3us), Some(h3us)));
    // #73 lists only us: a two-node ring, which Brunet's IsConnected accepts.
    assert!(h.node.is_connected());
}
