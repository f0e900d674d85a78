//! A tiny in-process STUN server on 127.0.0.1 for the unit tests, encoded with stun-rs.
//!
//! It listens on several loopback ports. Each port has an *identity*: the address it claims to
//! be. With [`FakeNet`] on the client side, identities may be documentation addresses
//! (192.0.2.x), which lets one loopback IP play a server with two IPs, and a simulated NAT
//! ([`SimNat`]) decides which mapped address to report and which changed answers get through.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use stun_rs::attributes::discovery::{
    ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin,
};
use stun_rs::attributes::stun::{ErrorCode, XorMappedAddress};
use stun_rs::methods::BINDING;
use stun_rs::{
    MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunMessage, StunMessageBuilder,
    TransactionId,
};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::reflect::nat::{Filtering, Mapping};
use crate::reflect::stun::DatagramSocket;

/// Misbehaviours to test the client against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quirk {
    /// A well-behaved server.
    None,
    /// Never answers.
    Silent,
    /// Ignores the first `n` requests.
    DropFirst(u32),
    /// Sends garbage, truncated and mismatched replies before each real answer.
    GarbageFirst,
    /// Answers only with a valid response carrying the wrong transaction id.
    WrongId,
    /// Answers with a success response without any mapped address.
    NoMapped,
    /// Answers with this STUN error code.
    Error(u16),
    /// Answers CHANGE-REQUEST from the port it was asked on.
    IgnoreChange,
}

/// A NAT between client and server, simulated by the server: it reports the mapping the NAT
/// would have made and drops changed answers its filter would drop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SimNat {
    pub mapping: Mapping,
    pub filtering: Filtering,
}

/// The public IP the simulated NAT maps to.
pub(crate) const SIM_PUBLIC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

struct State {
    quirk: Quirk,
    nat: Option<SimNat>,
    other: Option<SocketAddr>,
    /// Identities the client has sent to (the simulated NAT's filter state).
    contacted: HashSet<SocketAddr>,
}

/// A running responder; its tasks stop when it is dropped.
pub(crate) struct Responder {
    /// (identity, real loopback address) of each port, primary first.
    pub ports: Vec<(SocketAddr, SocketAddr)>,
    /// Requests received, on all ports.
    pub requests: Arc<AtomicU32>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl Responder {
    /// A server on one port whose identity is its real address, announcing no OTHER-ADDRESS.
    pub async fn single(quirk: Quirk) -> Responder {
        Responder::start(&[None], None, quirk, None).await
    }

    /// A server on two real loopback ports (primary and alternate port), announcing the second
    /// as OTHER-ADDRESS; CHANGE-REQUEST for the port is answered from it.
    pub async fn two_ports(quirk: Quirk) -> Responder {
        Responder::start(&[None, None], Some(1), quirk, None).await
    }

    /// A server with two IPs and two ports, identities `192.0.2.1/.2 : 3478/3479`, behind
    /// `nat` (or no NAT); reach it through [`FakeNet`].
    pub async fn rfc5780(quirk: Quirk, nat: Option<SimNat>, announce_other: bool) -> Responder {
        let ids = [(1, 3478), (1, 3479), (2, 3478), (2, 3479)]
            .map(|(ip, port)| Some(SocketAddr::from(([192, 0, 2, ip], port))));
        Responder::start(&ids, announce_other.then_some(3), quirk, nat).await
    }

    async fn start(
        ids: &[Option<SocketAddr>],
        other: Option<usize>,
        quirk: Quirk,
        nat: Option<SimNat>,
    ) -> Responder {
        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        for id in ids {
            let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
            let real = s.local_addr().expect("local addr");
            ports.push((id.unwrap_or(real), real));
            sockets.push(Arc::new(s));
        }
        let state = Arc::new(Mutex::new(State {
            quirk,
            nat,
            other: other.map(|i| ports[i].0),
            contacted: HashSet::new(),
        }));
        let requests = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for i in 0..sockets.len() {
            let (sockets, ports, state, requests) = (
                sockets.clone(),
                ports.clone(),
                state.clone(),
                requests.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((n, client)) = sockets[i].recv_from(&mut buf).await {
                    let seen = requests.fetch_add(1, Ordering::SeqCst) + 1;
                    let replies = answer(&state, &ports, i, &buf[..n], client, seen);
                    for (from, bytes) in replies {
                        let _ = sockets[from].send_to(&bytes, client).await;
                    }
                }
            }));
        }
        Responder {
            ports,
            requests,
            tasks,
        }
    }

    /// The primary identity (what the client is told to ask).
    pub fn primary(&self) -> SocketAddr {
        self.ports[0].0
    }

    /// Requests received so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The datagrams to send (by port index) for one received datagram.
fn answer(
    state: &Mutex<State>,
    ports: &[(SocketAddr, SocketAddr)],
    at: usize,
    data: &[u8],
    client: SocketAddr,
    seen: u32,
) -> Vec<(usize, Vec<u8>)> {
    let Ok((req, _)) = MessageDecoderBuilder::default().build().decode(data) else {
        return Vec::new();
    };
    if req.class() != MessageClass::Request || req.method() != BINDING {
        return Vec::new();
    }
    let mut st = state.lock().expect("responder state");
    let here = ports[at].0;
    st.contacted.insert(here);
    let id = *req.transaction_id();
    let flags = req
        .get::<ChangeRequest>()
        .and_then(|a| a.as_change_request().ok())
        .map(|c| c.flags())
        .unwrap_or_default();
    let (change_ip, change_port) = (
        flags.contains(ChangeRequestFlags::ChangeIp),
        flags.contains(ChangeRequestFlags::ChangePort),
    );
    let mut from = at;
    if st.quirk != Quirk::IgnoreChange && (change_ip || change_port) {
        let want_ip = if change_ip {
            st.other.map(|o| o.ip())
        } else {
            Some(here.ip())
        };
        let want_port = if change_port {
            st.other.map(|o| o.port())
        } else {
            Some(here.port())
        };
        if let (Some(ip), Some(port)) = (want_ip, want_port) {
            from = ports
                .iter()
                .position(|(id, _)| *id == SocketAddr::new(ip, port))
                .unwrap_or(at);
        }
    }
    let answer_id = ports[from].0;
    if let Some(nat) = st.nat {
        let allowed = match nat.filtering {
            Filtering::AddressDependent => st.contacted.iter().any(|c| c.ip() == answer_id.ip()),
            Filtering::AddressAndPortDependent => st.contacted.contains(&answer_id),
            _ => true,
        };
        if !allowed {
            return Vec::new();
        }
    }
    let mapped = match st.nat {
        None => client,
        Some(nat) => {
            let offset = match nat.mapping {
                Mapping::AddressDependent => u16::from(here.ip() != ports[0].0.ip()),
                Mapping::AddressAndPortDependent => at as u16,
                _ => 0,
            };
            SocketAddr::new(SIM_PUBLIC, 40000 + offset)
        }
    };
    let ok = || success(id, mapped, st.other, answer_id);
    match st.quirk {
        Quirk::Silent => Vec::new(),
        Quirk::DropFirst(n) if seen <= n => Vec::new(),
        Quirk::WrongId => vec![(
            from,
            success(TransactionId::default(), mapped, None, answer_id),
        )],
        Quirk::NoMapped => vec![(
            from,
            encode(
                StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
                    .with_transaction_id(id)
                    .build(),
            ),
        )],
        Quirk::Error(code) => {
            let e = stun_rs::ErrorCode::new(code, "test refusal").expect("error code");
            let msg = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
                .with_transaction_id(id)
                .with_attribute(ErrorCode::from(e))
                .build();
            vec![(from, encode(msg))]
        }
        Quirk::GarbageFirst => {
            let good = ok();
            let mut truncated_body = good.clone();
            truncated_body.truncate(good.len() - 4);
            vec![
                (from, b"definitely not STUN".to_vec()),
                (from, good[..10].to_vec()),
                (from, truncated_body),
                (
                    from,
                    success(TransactionId::default(), mapped, None, answer_id),
                ),
                (from, good),
            ]
        }
        _ => vec![(from, ok())],
    }
}

fn success(
    id: TransactionId,
    mapped: SocketAddr,
    other: Option<SocketAddr>,
    origin: SocketAddr,
) -> Vec<u8> {
    let mut b = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(id)
        .with_attribute(XorMappedAddress::from(mapped))
        .with_attribute(ResponseOrigin::from(origin));
    if let Some(o) = other {
        b = b.with_attribute(OtherAddress::from(o));
    }
    encode(b.build())
}

fn encode(msg: StunMessage) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, &msg)
        .expect("encode test response");
    buf.truncate(n);
    buf
}

/// The client's side of a fake internet: sends to identities, receives from them, over one
/// real loopback socket.
pub(crate) struct FakeNet {
    pub socket: UdpSocket,
    pub routes: Vec<(SocketAddr, SocketAddr)>,
}

impl FakeNet {
    pub async fn to(responder: &Responder) -> FakeNet {
        FakeNet {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback"),
            routes: responder.ports.clone(),
        }
    }
}

impl DatagramSocket for FakeNet {
    async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        let real = self
            .routes
            .iter()
            .find(|(id, _)| *id == to)
            .map_or(to, |r| r.1);
        self.socket.send_to(buf, real).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, real) = self.socket.recv_from(buf).await?;
        let id = self
            .routes
            .iter()
            .find(|(_, r)| *r == real)
            .map_or(real, |r| r.0);
        Ok((n, id))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}
