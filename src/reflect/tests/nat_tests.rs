//! Behaviour discovery against simulated NATs, and the classification table.

use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::responder::{FakeNet, Quirk, Responder, SIM_PUBLIC, SimNat};
use crate::reflect::nat::{Filtering as F, Mapping as M, NatClass, classify, discover};
use crate::reflect::stun::StunConfig;

/// Unanswered tests cost 150 ms here.
fn fast() -> StunConfig {
    StunConfig {
        initial_rto: Duration::from_millis(10),
        max_transmissions: 7,
        final_wait_factor: 16,
        max_total: Duration::from_millis(150),
    }
}

async fn behind(mapping: M, filtering: F) -> crate::reflect::Behaviour {
    let server = Responder::rfc5780(Quirk::None, Some(SimNat { mapping, filtering }), true).await;
    let net = FakeNet::to(&server).await;
    discover(&net, server.primary(), &fast(), None).await
}

#[test]
fn classification_table() {
    use NatClass::*;
    let cases = [
        (true, M::Unknown, F::Unknown, Open),
        (
            false,
            M::EndpointIndependent,
            F::EndpointIndependent,
            FullCone,
        ),
        (
            false,
            M::EndpointIndependent,
            F::AddressDependent,
            RestrictedCone,
        ),
        (
            false,
            M::EndpointIndependent,
            F::AddressAndPortDependent,
            PortRestrictedCone,
        ),
        (
            false,
            M::AddressDependent,
            F::EndpointIndependent,
            Symmetric,
        ),
        (false, M::AddressAndPortDependent, F::Unknown, Symmetric),
        (false, M::EndpointIndependent, F::Unknown, Unknown),
        (false, M::Unknown, F::EndpointIndependent, Unknown),
    ];
    for (open, m, f, want) in cases {
        assert_eq!(classify(open, m, f), want, "{open} {m:?} {f:?}");
    }
}

#[tokio::test]
async fn full_cone() {
    let b = behind(M::EndpointIndependent, F::EndpointIndependent).await;
    assert_eq!(
        (b.mapping, b.filtering, b.class),
        (
            M::EndpointIndependent,
            F::EndpointIndependent,
            NatClass::FullCone
        ),
        "{b:#?}"
    );
    assert_eq!(b.reflexive.unwrap().ip(), SIM_PUBLIC);
    assert_eq!(b.other_address, Some("192.0.2.2:3479".parse().unwrap()));
    let names: Vec<_> = b.steps.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "binding",
            "filtering-change-ip-port",
            "filtering-change-port",
            "mapping-alternate-ip",
            "mapping-alternate-ip-port"
        ]
    );
    assert!(b.errors.is_empty() && b.notes.is_empty(), "{b:#?}");
}

#[tokio::test]
async fn restricted_cone() {
    let b = behind(M::EndpointIndependent, F::AddressDependent).await;
    assert_eq!(b.filtering, F::AddressDependent, "{b:#?}");
    assert_eq!(b.class, NatClass::RestrictedCone);
}

#[tokio::test]
async fn port_restricted_cone() {
    let b = behind(M::EndpointIndependent, F::AddressAndPortDependent).await;
    assert_eq!(b.filtering, F::AddressAndPortDependent, "{b:#?}");
    assert_eq!(b.class, NatClass::PortRestrictedCone);
    // Both filtering tests went unanswered, concurrently: one timeout, not two.
    assert!(b.total_ms < 290, "{b:#?}");
    assert_eq!(b.steps[1].outcome, b.steps[2].outcome);
}

#[tokio::test]
async fn symmetric() {
    let b = behind(M::AddressAndPortDependent, F::AddressAndPortDependent).await;
    assert_eq!(b.mapping, M::AddressAndPortDependent, "{b:#?}");
    assert_eq!(b.class, NatClass::Symmetric);
    let b = behind(M::AddressDependent, F::AddressDependent).await;
    assert_eq!(b.mapping, M::AddressDependent, "{b:#?}");
    assert_eq!(b.class, NatClass::Symmetric);
}

#[tokio::test]
async fn open_when_the_server_sees_our_own_address() {
    let server = Responder::rfc5780(Quirk::None, None, true).await;
    let net = FakeNet::to(&server).await;
    let b = discover(&net, server.primary(), &fast(), None).await;
    assert_eq!(b.reflexive, Some(net.socket.local_addr().unwrap()));
    assert_eq!(b.class, NatClass::Open, "{b:#?}");
    assert_eq!(b.filtering, F::EndpointIndependent);
}

#[tokio::test]
async fn udp_blocked_when_nothing_answers() {
    let server = Responder::single(Quirk::Silent).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = discover(&sock, server.primary(), &fast(), None).await;
    assert_eq!(b.class, NatClass::UdpBlocked);
    assert_eq!(b.reflexive, None);
    assert_eq!(b.errors.len(), 1);
    assert!(b.steps[0].outcome.starts_with("no answer"), "{b:#?}");
}

#[tokio::test]
async fn no_alternate_address_gives_reflexive_and_unknown() {
    let nat = SimNat {
        mapping: M::EndpointIndependent,
        filtering: F::EndpointIndependent,
    };
    let server = Responder::rfc5780(Quirk::None, Some(nat), false).await;
    let net = FakeNet::to(&server).await;
    let b = discover(&net, server.primary(), &fast(), None).await;
    assert_eq!(b.reflexive.map(|r| r.ip()), Some(SIM_PUBLIC));
    assert_eq!(
        (b.mapping, b.filtering, b.class),
        (M::Unknown, F::Unknown, NatClass::Unknown)
    );
    assert!(b.notes[0].contains("no alternate address"), "{b:#?}");
    assert_eq!(b.steps.len(), 1);
}

#[tokio::test]
async fn a_same_ip_alternate_is_not_trusted() {
    let server = Responder::two_ports(Quirk::None).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = discover(&sock, server.primary(), &fast(), None).await;
    assert_eq!(b.class, NatClass::Open, "{b:#?}");
    assert!(b.notes[0].contains("shares its IP"), "{b:#?}");
}

#[tokio::test]
async fn a_server_ignoring_change_request_leaves_filtering_unknown() {
    let nat = SimNat {
        mapping: M::EndpointIndependent,
        filtering: F::EndpointIndependent,
    };
    let server = Responder::rfc5780(Quirk::IgnoreChange, Some(nat), true).await;
    let net = FakeNet::to(&server).await;
    let b = discover(&net, server.primary(), &fast(), None).await;
    assert_eq!(b.filtering, F::Unknown, "{b:#?}");
    assert_eq!(b.mapping, M::EndpointIndependent);
    assert_eq!(b.class, NatClass::Unknown);
    assert!(b.notes.iter().any(|n| n.contains("ignored CHANGE-REQUEST")));
}

#[tokio::test]
async fn a_deadline_during_filtering_is_not_a_verdict() {
    let nat = SimNat {
        mapping: M::EndpointIndependent,
        filtering: F::AddressAndPortDependent,
    };
    let server = Responder::rfc5780(Quirk::None, Some(nat), true).await;
    let net = FakeNet::to(&server).await;
    let deadline = Instant::now() + Duration::from_millis(60);
    let b = discover(&net, server.primary(), &fast(), Some(deadline)).await;
    assert!(b.reflexive.is_some());
    assert_eq!(b.filtering, F::Unknown, "{b:#?}");
    assert!(b.notes.iter().any(|n| n.contains("deadline")));
    assert!(b.total_ms < 200, "{b:#?}");
}
