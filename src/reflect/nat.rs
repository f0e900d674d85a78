//! NAT behaviour discovery (RFC 5780 §4.3–4.4) and the classic classes built from it.
//!
//! Read first: RFC 4787 §4.1 and §5 (mapping and filtering behaviour) and RFC 5780 §4. The
//! filtering tests run before the mapping tests because the mapping tests send to the server's
//! alternate address, and a restricted NAT would then let the alternate address's answers in.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::ReflectError;
use super::stun::{
    BindingRequest, BindingResponse, Change, ClientStats, DatagramSocket, StunClient, StunConfig,
    millis,
};

/// How the NAT picks the public address for a flow (RFC 4787 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// One public address per local socket, whoever we talk to: hole punching works.
    EndpointIndependent,
    /// A new public address per remote IP.
    AddressDependent,
    /// A new public address per remote IP and port.
    AddressAndPortDependent,
    /// Not measured; the notes say why.
    Unknown,
}

impl Mapping {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mapping::EndpointIndependent => "endpoint-independent",
            Mapping::AddressDependent => "address-dependent",
            Mapping::AddressAndPortDependent => "address-and-port-dependent",
            Mapping::Unknown => "unknown",
        }
    }
}

/// Which outsiders may send to a public address (RFC 4787 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// Anyone.
    EndpointIndependent,
    /// Only IPs we sent to.
    AddressDependent,
    /// Only IP and port pairs we sent to.
    AddressAndPortDependent,
    /// Not measured; the notes say why.
    Unknown,
}

impl Filtering {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressDependent => "address-dependent",
            Filtering::AddressAndPortDependent => "address-and-port-dependent",
            Filtering::Unknown => "unknown",
        }
    }
}

/// The classic NAT classes, which decide whether two peers can punch a direct path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatClass {
    /// No NAT: the server saw our local address.
    Open,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// A public address per destination: direct paths to port-restricted or symmetric peers fail.
    Symmetric,
    /// No STUN answer at all: UDP does not get through (or the server is down).
    UdpBlocked,
    /// Not enough evidence (no alternate server address, refused or unanswered tests).
    Unknown,
}

impl NatClass {
    /// A short lower-case name for people and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NatClass::Open => "open",
            NatClass::FullCone => "full-cone",
            NatClass::RestrictedCone => "restricted-cone",
            NatClass::PortRestrictedCone => "port-restricted-cone",
            NatClass::Symmetric => "symmetric",
            NatClass::UdpBlocked => "udp-blocked",
            NatClass::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for NatClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class for a measured behaviour; `open` when the server saw our local address.
pub fn classify(open: bool, mapping: Mapping, filtering: Filtering) -> NatClass {
    use Filtering as F;
    use Mapping as M;
    match (open, mapping, filtering) {
        (true, _, _) => NatClass::Open,
        (_, M::AddressDependent | M::AddressAndPortDependent, _) => NatClass::Symmetric,
        (_, M::EndpointIndependent, F::EndpointIndependent) => NatClass::FullCone,
        (_, M::EndpointIndependent, F::AddressDependent) => NatClass::RestrictedCone,
        (_, M::EndpointIndependent, F::AddressAndPortDependent) => NatClass::PortRestrictedCone,
        _ => NatClass::Unknown,
    }
}

/// One test of the discovery, with its timing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Which test (`binding`, `filtering-change-ip-port`, …).
    pub name: &'static str,
    /// Where the request went.
    pub target: SocketAddr,
    /// Until the answer, or until the test gave up.
    pub ms: u64,
    /// What came back.
    pub outcome: String,
}

/// Everything learnt from one STUN server.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Behaviour {
    /// The server's primary address.
    pub server: SocketAddr,
    /// Our address on the path to the server, when it could be found.
    pub local: Option<SocketAddr>,
    /// Our address as the server saw it.
    pub reflexive: Option<SocketAddr>,
    /// The server's alternate address (OTHER-ADDRESS), needed for behaviour tests.
    pub other_address: Option<SocketAddr>,
    /// The server's RESPONSE-ORIGIN in its first answer.
    pub response_origin: Option<SocketAddr>,
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering behaviour.
    pub filtering: Filtering,
    /// The resulting class.
    pub class: NatClass,
    /// Round trip of the first Binding transaction.
    pub rtt_ms: Option<u64>,
    /// The whole discovery.
    pub total_ms: u64,
    /// Each test in order.
    pub steps: Vec<Step>,
    /// Why a verdict is missing or weaker than it could be.
    pub notes: Vec<String>,
    /// Failures, as text.
    pub errors: Vec<String>,
    /// What the STUN client saw (malformed and stray replies).
    pub stats: ClientStats,
}

/// Runs the RFC 5780 tests against `server` through `socket`; never fails, the result says
/// what could not be measured and why. Every step ends by `deadline`.
pub async fn discover<T: DatagramSocket + ?Sized>(
    socket: &T,
    server: SocketAddr,
    config: &StunConfig,
    deadline: Option<Instant>,
) -> Behaviour {
    let start = Instant::now();
    let mut b = Behaviour {
        server,
        local: local_towards(socket, server),
        reflexive: None,
        other_address: None,
        response_origin: None,
        mapping: Mapping::Unknown,
        filtering: Filtering::Unknown,
        class: NatClass::Unknown,
        rtt_ms: None,
        total_ms: 0,
        steps: Vec::new(),
        notes: Vec::new(),
        errors: Vec::new(),
        stats: ClientStats::default(),
    };
    let mut client = StunClient::new(socket, config.clone());
    let [first] = run(
        &mut client,
        &mut b,
        &[("binding", server, Change::NONE)],
        deadline,
    )
    .await;
    match first {
        Ok(r) => {
            b.reflexive = Some(r.mapped);
            b.other_address = r.other_address;
            b.response_origin = r.response_origin;
            b.rtt_ms = Some(millis(r.rtt));
            behaviour_tests(&mut client, &mut b, r, deadline).await;
        }
        Err(e) => {
            if matches!(e, ReflectError::Timeout { .. }) {
                b.class = NatClass::UdpBlocked;
            }
            b.errors.push(e.to_string());
        }
    }
    b.stats = client.stats();
    b.total_ms = millis(start.elapsed());
    tracing::debug!(%server, class = %b.class, ms = b.total_ms, "NAT behaviour discovered");
    b
}

/// The filtering and mapping tests, once the first Binding has answered.
async fn behaviour_tests<T: DatagramSocket + ?Sized>(
    client: &mut StunClient<'_, T>,
    b: &mut Behaviour,
    first: BindingResponse,
    deadline: Option<Instant>,
) {
    let server = b.server;
    let open = b.local == Some(first.mapped);
    let other = match first.other_address {
        Some(o) if o.ip() != server.ip() && o.port() != server.port() => o,
        found => {
            b.notes.push(match found {
                None => "the server announces no alternate address (OTHER-ADDRESS), so mapping \
                         and filtering cannot be tested (RFC 5780 needs a server with two IPs)"
                    .into(),
                Some(o) => format!(
                    "the server's alternate address {o} shares its IP or port, so mapping and \
                     filtering cannot be tested"
                ),
            });
            if open {
                b.mapping = Mapping::EndpointIndependent;
            }
            b.class = classify(open, b.mapping, b.filtering);
            return;
        }
    };
    let [f2, f3] = run(
        client,
        b,
        &[
            ("filtering-change-ip-port", server, Change::IP_AND_PORT),
            ("filtering-change-port", server, Change::PORT),
        ],
        deadline,
    )
    .await;
    b.filtering = if deadline.is_some_and(|d| Instant::now() >= d) {
        b.notes
            .push("filtering not measured: the deadline passed during the tests".into());
        Filtering::Unknown
    } else {
        filtering_verdict(server, f2, f3, &mut b.notes)
    };
    let alternate_ip = SocketAddr::new(other.ip(), server.port());
    let [m2, m3] = run(
        client,
        b,
        &[
            ("mapping-alternate-ip", alternate_ip, Change::NONE),
            ("mapping-alternate-ip-port", other, Change::NONE),
        ],
        deadline,
    )
    .await;
    b.mapping = mapping_verdict(first.mapped, m2, m3, &mut b.notes);
    b.class = classify(open, b.mapping, b.filtering);
}

/// RFC 5780 §4.4: answers from a changed IP (test II) or port (test III) say who may send in.
fn filtering_verdict(
    server: SocketAddr,
    change_ip_port: Result<BindingResponse, ReflectError>,
    change_port: Result<BindingResponse, ReflectError>,
    notes: &mut Vec<String>,
) -> Filtering {
    let mut unknown = |note: String| {
        notes.push(note);
        Filtering::Unknown
    };
    let ignored = |from: SocketAddr| {
        format!("the server ignored CHANGE-REQUEST (answered from {from}), so filtering is unknown")
    };
    match (change_ip_port, change_port) {
        (Ok(r), _) if r.from.ip() == server.ip() => unknown(ignored(r.from)),
        (Ok(_), _) => Filtering::EndpointIndependent,
        (Err(ReflectError::Timeout { .. }), Ok(r)) if r.from.port() == server.port() => {
            unknown(ignored(r.from))
        }
        (Err(ReflectError::Timeout { .. }), Ok(_)) => Filtering::AddressDependent,
        (Err(ReflectError::Timeout { .. }), Err(ReflectError::Timeout { .. })) => {
            Filtering::AddressAndPortDependent
        }
        // Name the failure that is not a plain timeout.
        (Err(ReflectError::Timeout { .. }), Err(e)) | (Err(e), _) => {
            unknown(format!("filtering test failed: {e}"))
        }
    }
}

/// RFC 5780 §4.3: compare the mappings seen by the primary, alternate-IP and alternate
/// IP-and-port addresses.
fn mapping_verdict(
    first: SocketAddr,
    alternate_ip: Result<BindingResponse, ReflectError>,
    alternate_both: Result<BindingResponse, ReflectError>,
    notes: &mut Vec<String>,
) -> Mapping {
    match (alternate_ip, alternate_both) {
        (Ok(r2), _) if r2.mapped == first => Mapping::EndpointIndependent,
        (Ok(r2), Ok(r3)) if r3.mapped == r2.mapped => Mapping::AddressDependent,
        (Ok(_), Ok(_)) => Mapping::AddressAndPortDependent,
        (Err(e), _) | (_, Err(e)) => {
            notes.push(format!("mapping test failed: {e}"));
            Mapping::Unknown
        }
    }
}

/// Runs a batch of tests concurrently and records each as a [`Step`].
async fn run<T: DatagramSocket + ?Sized, const N: usize>(
    client: &mut StunClient<'_, T>,
    b: &mut Behaviour,
    tests: &[(&'static str, SocketAddr, Change); N],
    deadline: Option<Instant>,
) -> [Result<BindingResponse, ReflectError>; N] {
    let start = Instant::now();
    let requests: Vec<BindingRequest> = tests
        .iter()
        .map(|&(_, server, change)| BindingRequest { server, change })
        .collect();
    let results = client.bindings(&requests, deadline).await;
    let elapsed = start.elapsed();
    for ((name, target, _), r) in tests.iter().zip(&results) {
        b.steps.push(step(name, *target, r, elapsed));
    }
    let mut it = results.into_iter();
    // `bindings` returns exactly one result per request.
    std::array::from_fn(|_| it.next().unwrap_or(Err(ReflectError::DeadlinePassed)))
}

fn step(
    name: &'static str,
    target: SocketAddr,
    r: &Result<BindingResponse, ReflectError>,
    batch: Duration,
) -> Step {
    let (ms, outcome) = match r {
        Ok(r) => (
            millis(r.rtt),
            format!("mapped {} (answered from {})", r.mapped, r.from),
        ),
        Err(ReflectError::Timeout {
            transmissions,
            waited_ms,
            ..
        }) => (*waited_ms, format!("no answer to {transmissions} requests")),
        Err(e) => (millis(batch), e.to_string()),
    };
    Step {
        name,
        target,
        ms,
        outcome,
    }
}

/// Our address on the path to `server`: the socket's own, or, when it is bound to the wildcard
/// address, the source address the kernel would pick (found by connecting a scratch socket,
/// which sends nothing).
fn local_towards<T: DatagramSocket + ?Sized>(socket: &T, server: SocketAddr) -> Option<SocketAddr> {
    let local = socket.local_addr().ok()?;
    if !local.ip().is_unspecified() {
        return Some(local);
    }
    let any: IpAddr = match server {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let scratch = std::net::UdpSocket::bind((any, 0)).ok()?;
    scratch.connect(server).ok()?;
    Some(SocketAddr::new(
        scratch.local_addr().ok()?.ip(),
        local.port(),
    ))
}
