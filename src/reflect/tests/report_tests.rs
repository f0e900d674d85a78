//! Server lists, the concurrent probe with its deadline, and the report.

use std::str::FromStr;
use std::time::Duration;

use tokio_xmpp::parsers::date::DateTime;
use xmpp_ext::extdisco::{Action, ExternalService, ServiceKind, Transport};

use super::responder::{Quirk, Responder};
use crate::reflect::report::{NetReport, ProbeConfig, Source, StunServer, probe, stun_servers};
use crate::reflect::stun::StunConfig;
use crate::reflect::{NatClass, ReflectError};

pub(super) fn service(kind: ServiceKind, host: &str, port: Option<u16>) -> ExternalService {
    ExternalService {
        transport: match kind {
            ServiceKind::Stuns | ServiceKind::Turns => Transport::Tcp,
            _ => Transport::Udp,
        },
        kind,
        host: host.into(),
        port,
        username: None,
        password: None,
        expires: None,
        restricted: false,
        name: None,
        action: Action::Add,
    }
}

pub(super) fn expiring(at: &str) -> Option<DateTime> {
    Some(DateTime::from_str(at).expect("test timestamp"))
}

fn xmpp(domain: &str) -> Source {
    Source::Xep0215 {
        xmpp_server: domain.into(),
    }
}

#[test]
fn configured_servers_parse() {
    let s = StunServer::configured("stun.example.org").unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, &s.source),
        ("stun.example.org", 3478, &Source::Configured)
    );
    assert_eq!(
        StunServer::configured("198.18.0.20:3479").unwrap().port,
        3479
    );
    let v6 = StunServer::configured("[2001:db8::1]:5000").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 5000));
    assert_eq!(StunServer::configured("2001:db8::1").unwrap().port, 3478);
    for bad in ["", "host:", "host:0", "host:99999", "a b:1"] {
        let e = StunServer::configured(bad).unwrap_err();
        assert!(matches!(e, ReflectError::InvalidServer { .. }), "{bad}");
        assert!(e.to_string().contains("host:port"));
    }
}

#[test]
fn offers_win_over_fallback_and_are_deduplicated() {
    let alpha = [
        service(ServiceKind::Stun, "198.18.0.20", Some(3478)),
        service(ServiceKind::Turn, "198.18.0.20", Some(3478)),
        service(ServiceKind::Stuns, "198.18.0.20", None),
    ];
    let mut removed = service(ServiceKind::Stun, "old.example", None);
    removed.action = Action::Remove;
    let beta = [
        service(ServiceKind::Stun, "198.18.0.11", None),
        service(ServiceKind::Stun, "198.18.0.20", Some(3478)),
        removed,
    ];
    let fallback = [StunServer::configured("stun.example.org").unwrap()];
    let got = stun_servers(
        [("alpha.lab", &alpha[..]), ("beta.lab", &beta[..])],
        &fallback,
    );
    let want = [
        ("198.18.0.20", 3478, xmpp("alpha.lab")),
        ("198.18.0.11", 3478, xmpp("beta.lab")),
    ];
    let got: Vec<_> = got
        .iter()
        .map(|s| (s.host.as_str(), s.port, s.source.clone()))
        .collect();
    assert_eq!(got, want);
    let only_turn = [service(ServiceKind::Turn, "198.18.0.20", None)];
    assert_eq!(
        stun_servers([("alpha.lab", &only_turn[..])], &fallback),
        fallback
    );
    assert_eq!(stun_servers([], &fallback), fallback);
}

#[test]
fn summary_prefers_measured_servers() {
    let report = |class| crate::reflect::ServerReport {
        server: "x:1".into(),
        source: Source::Configured,
        address: None,
        reflexive: None,
        other_address: None,
        mapping: crate::reflect::Mapping::Unknown,
        filtering: crate::reflect::Filtering::Unknown,
        class,
        rtt_ms: None,
        resolve_ms: 0,
        total_ms: 0,
        steps: vec![],
        notes: vec![],
        errors: vec![],
        stats: Default::default(),
    };
    use NatClass::*;
    let s = |classes: &[NatClass]| {
        NetReport::summarise(&classes.iter().map(|c| report(*c)).collect::<Vec<_>>())
    };
    assert_eq!(s(&[Unknown, UdpBlocked, Symmetric, FullCone]), Symmetric);
    assert_eq!(s(&[UdpBlocked, UdpBlocked]), UdpBlocked);
    assert_eq!(s(&[UdpBlocked, Unknown]), Unknown);
    assert_eq!(s(&[]), Unknown);
}

#[tokio::test]
async fn probe_asks_all_servers_within_the_deadline() {
    let good = Responder::two_ports(Quirk::None).await;
    let silent = Responder::single(Quirk::Silent).await;
    let servers = [
        StunServer::configured(&good.primary().to_string()).unwrap(),
        StunServer::configured(&silent.primary().to_string()).unwrap(),
        StunServer::configured("[::1]:3478").unwrap(),
    ];
    let config = ProbeConfig {
        stun: StunConfig::default(),
        deadline: Duration::from_millis(400),
    };
    let report = probe(&servers, "127.0.0.1:0".parse().unwrap(), &config).await;
    assert!(report.total_ms < 1000, "{report:#?}");
    assert_eq!(report.servers.len(), 3);
    let [g, s, n] = &report.servers[..] else {
        unreachable!()
    };
    assert_eq!(g.class, NatClass::Open, "{g:#?}");
    assert_eq!(
        g.reflexive.map(|r| r.ip()),
        Some("127.0.0.1".parse().unwrap())
    );
    assert!(g.rtt_ms.is_some());
    assert_eq!(s.class, NatClass::UdpBlocked, "{s:#?}");
    assert!(s.errors[0].contains("no answer"), "{s:#?}");
    assert_eq!(n.address, None);
    assert!(n.errors[0].contains("no IPv4 address"), "{n:#?}");
    assert_eq!(report.class, NatClass::Open);
    assert_eq!(report.reflexive, g.reflexive);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["class"], "open");
    assert_eq!(json["servers"][0]["source"]["kind"], "configured");
    assert_eq!(json["servers"][1]["class"], "udp-blocked");
    assert!(json["servers"][0]["steps"][0]["ms"].is_u64());
    let text = report.to_string();
    assert!(
        text.starts_with("NAT: open, public address 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("1 of 3 STUN servers answered"), "{text}");
    assert!(
        text.contains("note: the server's alternate address"),
        "{text}"
    );
}

#[test]
fn the_probe_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let config = ProbeConfig::default();
    let fut = probe(&[], "127.0.0.1:0".parse().unwrap(), &config);
    assert_send(&fut);
}

#[tokio::test]
async fn probe_of_nothing_is_unknown() {
    let report = probe(&[], "127.0.0.1:0".parse().unwrap(), &ProbeConfig::default()).await;
    assert_eq!(report.class, NatClass::Unknown);
    assert!(report.servers.is_empty());
}
