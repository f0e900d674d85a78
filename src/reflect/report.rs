//! The network check: which STUN servers to ask (XEP-0215 offers, else configured ones), asking
//! them all at once under one deadline, and a [`NetReport`] for `chamber netcheck`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use xmpp_ext::extdisco::{Action, ExternalService, ServiceKind, Transport};

use super::ReflectError;
use super::nat::{self, Behaviour, Filtering, Mapping, NatClass, Step};
use super::stun::{ClientStats, StunConfig, millis};

/// The STUN port when none is given (RFC 8489 §18.6).
pub const DEFAULT_STUN_PORT: u16 = 3478;

/// Where a STUN server came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// Offered by an XMPP server through XEP-0215.
    Xep0215 {
        /// The XMPP server (domain) that offered it.
        xmpp_server: String,
    },
    /// From the configuration, because no XMPP server offered one.
    Configured,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Xep0215 { xmpp_server } => write!(f, "XEP-0215 of {xmpp_server}"),
            Source::Configured => f.write_str("configured fallback"),
        }
    }
}

/// A STUN server to ask, by name as offered or configured.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StunServer {
    /// Host name or IP literal.
    pub host: String,
    /// UDP port.
    pub port: u16,
    /// Where it came from.
    pub source: Source,
}

impl StunServer {
    /// A configured server: `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
    pub fn configured(spec: &str) -> Result<StunServer, ReflectError> {
        let invalid = |reason| ReflectError::InvalidServer {
            spec: spec.to_string(),
            reason,
        };
        let spec_t = spec.trim();
        if let Ok(addr) = spec_t.parse::<SocketAddr>() {
            return Ok(StunServer::new(addr.ip().to_string(), addr.port()));
        }
        if spec_t.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(StunServer::new(spec_t.to_string(), DEFAULT_STUN_PORT));
        }
        let (host, port) = match spec_t.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| invalid("bad port"))?),
            None => (spec_t, DEFAULT_STUN_PORT),
        };
        if port == 0 {
            return Err(invalid("port 0"));
        }
        if host.is_empty() || host.len() > 253 || host.contains(|c: char| c.is_whitespace()) {
            return Err(invalid("empty or malformed host name"));
        }
        Ok(StunServer::new(host.to_string(), port))
    }

    fn new(host: String, port: u16) -> StunServer {
        StunServer {
            host,
            port,
            source: Source::Configured,
        }
    }

    /// The STUN-over-UDP server in one XEP-0215 service, if it is one.
    pub fn from_offer(xmpp_server: &str, s: &ExternalService) -> Option<StunServer> {
        let usable = s.kind == ServiceKind::Stun
            && s.transport == Transport::Udp
            && s.action != Action::Remove;
        if !usable {
            return None;
        }
        Some(StunServer {
            host: s.host.clone(),
            port: s.port_or_default()?,
            source: Source::Xep0215 {
                xmpp_server: xmpp_server.to_string(),
            },
        })
    }
}

/// The servers to probe: every STUN/UDP service the XMPP servers offered (each once, first
/// offer wins), or `fallback` when none offered any.
pub fn stun_servers<'a>(
    offers: impl IntoIterator<Item = (&'a str, &'a [ExternalService])>,
    fallback: &[StunServer],
) -> Vec<StunServer> {
    let mut out: Vec<StunServer> = Vec::new();
    for (xmpp_server, services) in offers {
        for s in services
            .iter()
            .filter_map(|s| StunServer::from_offer(xmpp_server, s))
        {
            if !out.iter().any(|o| o.host == s.host && o.port == s.port) {
                out.push(s);
            }
        }
    }
    if out.is_empty() {
        out = fallback.to_vec();
    }
    out
}

/// How long a check may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Retransmission timing of each STUN test.
    pub stun: StunConfig,
    /// The whole check, all servers together.
    pub deadline: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            stun: StunConfig::default(),
            deadline: Duration::from_secs(10),
        }
    }
}

/// What one STUN server told us.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServerReport {
    /// `host:port` as offered or configured.
    pub server: String,
    /// Where it came from.
    pub source: Source,
    /// The address it resolved to.
    pub address: Option<SocketAddr>,
    /// Our address as it saw it.
    pub reflexive: Option<SocketAddr>,
    /// Its alternate address, when it has one (RFC 5780).
    pub other_address: Option<SocketAddr>,
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering behaviour.
    pub filtering: Filtering,
    /// NAT class.
    pub class: NatClass,
    /// Round trip of the first Binding.
    pub rtt_ms: Option<u64>,
    /// Name resolution.
    pub resolve_ms: u64,
    /// Everything for this server.
    pub total_ms: u64,
    /// Each test with its timing.
    pub steps: Vec<Step>,
    /// Why something is unknown.
    pub notes: Vec<String>,
    /// Failures, as text.
    pub errors: Vec<String>,
    /// Replies the STUN client dropped (malformed or answering nothing of ours).
    pub stats: ClientStats,
}

impl ServerReport {
    fn failed(s: &StunServer, address: Option<SocketAddr>, ms: u64, e: ReflectError) -> Self {
        ServerReport {
            server: format!("{}:{}", s.host, s.port),
            source: s.source.clone(),
            address,
            reflexive: None,
            other_address: None,
            mapping: Mapping::Unknown,
            filtering: Filtering::Unknown,
            class: NatClass::Unknown,
            rtt_ms: None,
            resolve_ms: ms,
            total_ms: ms,
            steps: Vec::new(),
            notes: Vec::new(),
            errors: vec![e.to_string()],
            stats: ClientStats::default(),
        }
    }

    fn measured(s: &StunServer, resolve_ms: u64, b: Behaviour) -> Self {
        ServerReport {
            server: format!("{}:{}", s.host, s.port),
            source: s.source.clone(),
            address: Some(b.server),
            reflexive: b.reflexive,
            other_address: b.other_address,
            mapping: b.mapping,
            filtering: b.filtering,
            class: b.class,
            rtt_ms: b.rtt_ms,
            resolve_ms,
            total_ms: resolve_ms + b.total_ms,
            steps: b.steps,
            notes: b.notes,
            errors: b.errors,
            stats: b.stats,
        }
    }
}

/// The result of a network check.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NetReport {
    /// The local address each server's socket was bound to.
    pub local_bind: SocketAddr,
    /// The best-supported class over all servers (see [`NetReport::summarise`]).
    pub class: NatClass,
    /// The first reflexive address learnt.
    pub reflexive: Option<SocketAddr>,
    /// One entry per server, in the order given.
    pub servers: Vec<ServerReport>,
    /// The deadline the check ran under.
    pub deadline_ms: u64,
    /// How long it took.
    pub total_ms: u64,
}

impl NetReport {
    /// The class to show: the first server with a measured behaviour (or an open path) wins;
    /// UDP blocked only when every server went unanswered; otherwise unknown.
    pub fn summarise(servers: &[ServerReport]) -> NatClass {
        let measured = servers
            .iter()
            .map(|s| s.class)
            .find(|c| !matches!(c, NatClass::Unknown | NatClass::UdpBlocked));
        match measured {
            Some(c) => c,
            None if !servers.is_empty()
                && servers.iter().all(|s| s.class == NatClass::UdpBlocked) =>
            {
                NatClass::UdpBlocked
            }
            None => NatClass::Unknown,
        }
    }
}

/// Checks every server at once, each from its own socket bound to `local_bind` (use port 0),
/// and returns by `config.deadline` whatever happens.
pub async fn probe(
    servers: &[StunServer],
    local_bind: SocketAddr,
    config: &ProbeConfig,
) -> NetReport {
    let start = Instant::now();
    let deadline = start + config.deadline;
    // The steps bound themselves by the deadline; this only catches a stuck name lookup.
    let hard_stop = deadline + Duration::from_millis(250);
    let reports = futures::future::join_all(servers.iter().map(|s| async move {
        match tokio::time::timeout_at(hard_stop, probe_one(s, local_bind, &config.stun, deadline))
            .await
        {
            Ok(r) => r,
            Err(_) => ServerReport::failed(
                s,
                None,
                millis(start.elapsed()),
                ReflectError::DeadlinePassed,
            ),
        }
    }))
    .await;
    let report = NetReport {
        local_bind,
        class: NetReport::summarise(&reports),
        reflexive: reports.iter().find_map(|r| r.reflexive),
        servers: reports,
        deadline_ms: millis(config.deadline),
        total_ms: millis(start.elapsed()),
    };
    tracing::info!(class = %report.class, reflexive = ?report.reflexive, ms = report.total_ms,
        servers = report.servers.len(), "network check done");
    report
}

async fn probe_one(
    s: &StunServer,
    local_bind: SocketAddr,
    stun: &StunConfig,
    deadline: Instant,
) -> ServerReport {
    let start = Instant::now();
    let address = match resolve(s, local_bind).await {
        Ok(a) => a,
        Err(e) => return ServerReport::failed(s, None, millis(start.elapsed()), e),
    };
    let resolve_ms = millis(start.elapsed());
    let socket = match UdpSocket::bind(local_bind).await {
        Ok(sock) => sock,
        Err(source) => {
            let e = ReflectError::Bind {
                addr: local_bind,
                source,
            };
            return ServerReport::failed(s, Some(address), resolve_ms, e);
        }
    };
    let b = nat::discover(&socket, address, stun, Some(deadline)).await;
    ServerReport::measured(s, resolve_ms, b)
}

/// The server's first address in the local socket's family.
async fn resolve(s: &StunServer, local_bind: SocketAddr) -> Result<SocketAddr, ReflectError> {
    let fail = |reason: String| ReflectError::Resolve {
        host: s.host.clone(),
        port: s.port,
        reason,
    };
    let addrs = tokio::net::lookup_host((s.host.as_str(), s.port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut seen = 0;
    for a in addrs {
        seen += 1;
        if a.is_ipv4() == local_bind.is_ipv4() {
            return Ok(a);
        }
    }
    Err(fail(if seen == 0 {
        "no addresses".into()
    } else {
        format!(
            "no {} address",
            if local_bind.is_ipv4() { "IPv4" } else { "IPv6" }
        )
    }))
}

impl fmt::Display for NetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answered = self
            .servers
            .iter()
            .filter(|s| s.reflexive.is_some())
            .count();
        write!(f, "NAT: {}", self.class)?;
        if let Some(r) = self.reflexive {
            write!(f, ", public address {r}")?;
        }
        writeln!(
            f,
            " ({answered} of {} STUN servers answered, {} ms)",
            self.servers.len(),
            self.total_ms
        )?;
        for s in &self.servers {
            write!(f, "  {} ({}): ", s.server, s.source)?;
            match s.reflexive {
                Some(r) => write!(
                    f,
                    "{}, public {r}, mapping {}, filtering {}",
                    s.class,
                    s.mapping.as_str(),
                    s.filtering.as_str()
                )?,
                None => write!(f, "{}", s.class)?,
            }
            if let Some(rtt) = s.rtt_ms {
                write!(f, ", rtt {rtt} ms")?;
            }
            writeln!(f, ", {} ms", s.total_ms)?;
            for n in &s.notes {
                writeln!(f, "    note: {n}")?;
            }
            for e in &s.errors {
                writeln!(f, "    error: {e}")?;
            }
        }
        Ok(())
    }
}
