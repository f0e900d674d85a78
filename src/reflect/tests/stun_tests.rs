//! The Binding client: answers, retransmission, timeouts, junk on the socket.

use std::time::Duration;

use stun_rs::MessageDecoderBuilder;
use stun_rs::attributes::discovery::{ChangeRequest, ChangeRequestFlags};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::responder::{Quirk, Responder};
use crate::reflect::ReflectError;
use crate::reflect::stun::{BindingRequest, Change, StunClient, StunConfig, encode_request};

/// Quick timing for loopback: 10 ms doubling, Rc 4, a final wait of 4 RTOs (110 ms in all).
fn fast() -> StunConfig {
    StunConfig {
        initial_rto: Duration::from_millis(10),
        max_transmissions: 4,
        final_wait_factor: 4,
        max_total: Duration::from_secs(5),
    }
}

async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback")
}

#[tokio::test]
async fn binding_reads_mapped_other_and_origin() {
    let server = Responder::two_ports(Quirk::None).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let r = client
        .binding(server.primary(), Change::NONE)
        .await
        .expect("answer");
    assert_eq!(r.mapped, sock.local_addr().unwrap());
    assert_eq!(r.from, server.primary());
    assert_eq!(r.other_address, Some(server.ports[1].0));
    assert_eq!(r.response_origin, Some(server.primary()));
    assert_eq!(r.transmissions, 1);
    assert!(r.rtt < Duration::from_secs(1));
    assert_eq!(client.stats().sent, 1);
    assert_eq!(client.stats().malformed + client.stats().unmatched, 0);
}

#[tokio::test]
async fn change_request_is_answered_from_the_alternate_port() {
    let server = Responder::two_ports(Quirk::None).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let r = client
        .binding(server.primary(), Change::PORT)
        .await
        .unwrap();
    assert_eq!(r.from, server.ports[1].0);
    assert_eq!(r.response_origin, Some(server.ports[1].0));
}

#[tokio::test]
async fn retransmits_until_answered() {
    let server = Responder::single(Quirk::DropFirst(2)).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let r = client
        .binding(server.primary(), Change::NONE)
        .await
        .unwrap();
    assert_eq!(r.transmissions, 3);
    assert_eq!(server.requests(), 3);
    // Sent at 0, 10 and 30 ms: the answer cannot come before the third send.
    assert!(r.rtt >= Duration::from_millis(30), "rtt {:?}", r.rtt);
}

#[tokio::test]
async fn gives_up_after_the_schedule() {
    let server = Responder::single(Quirk::Silent).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let start = Instant::now();
    let e = client
        .binding(server.primary(), Change::NONE)
        .await
        .unwrap_err();
    let took = start.elapsed();
    // Sends at 0, 10, 30, 70 ms, then waits 4 × 10 ms.
    assert!(
        matches!(
            e,
            ReflectError::Timeout {
                transmissions: 4,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        took >= Duration::from_millis(105) && took < Duration::from_millis(600),
        "{took:?}"
    );
    assert_eq!(server.requests(), 4);
    assert!(e.to_string().contains("UDP may be blocked"));
}

#[tokio::test]
async fn max_total_bounds_a_transaction() {
    let server = Responder::single(Quirk::Silent).await;
    let sock = socket().await;
    let config = StunConfig {
        max_total: Duration::from_millis(50),
        max_transmissions: 7,
        ..fast()
    };
    let mut client = StunClient::new(&sock, config);
    let start = Instant::now();
    let e = client.binding(server.primary(), Change::NONE).await;
    assert!(matches!(
        e,
        Err(ReflectError::Timeout {
            transmissions: 3,
            ..
        })
    ));
    assert!(start.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn a_past_deadline_ends_at_once() {
    let server = Responder::single(Quirk::None).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let req = BindingRequest {
        server: server.primary(),
        change: Change::NONE,
    };
    let r = client.bindings(&[req], Some(Instant::now())).await;
    assert!(matches!(
        r[0],
        Err(ReflectError::Timeout {
            transmissions: 0,
            ..
        })
    ));
}

#[tokio::test]
async fn garbage_and_strays_are_counted_and_ignored() {
    let server = Responder::single(Quirk::GarbageFirst).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let r = client
        .binding(server.primary(), Change::NONE)
        .await
        .unwrap();
    assert_eq!(r.mapped, sock.local_addr().unwrap());
    let stats = client.stats();
    assert_eq!(stats.malformed, 3, "{stats:?}");
    assert_eq!(stats.unmatched, 1, "{stats:?}");
    assert_eq!(stats.received, 5);
}

#[tokio::test]
async fn answers_to_someone_else_time_out() {
    let server = Responder::single(Quirk::WrongId).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let e = client.binding(server.primary(), Change::NONE).await;
    assert!(matches!(e, Err(ReflectError::Timeout { .. })));
    assert_eq!(client.stats().unmatched, 4);
}

#[tokio::test]
async fn a_response_without_address_is_named_in_the_timeout() {
    let server = Responder::single(Quirk::NoMapped).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let e = client
        .binding(server.primary(), Change::NONE)
        .await
        .unwrap_err();
    match &e {
        ReflectError::Timeout { last_ignored, .. } => {
            assert!(
                last_ignored
                    .as_deref()
                    .unwrap()
                    .contains("XOR-MAPPED-ADDRESS")
            )
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("last reply ignored"));
}

#[tokio::test]
async fn error_responses_end_the_transaction() {
    let server = Responder::single(Quirk::Error(420)).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    match client.binding(server.primary(), Change::IP_AND_PORT).await {
        Err(ReflectError::ErrorResponse { code, reason, .. }) => {
            assert_eq!(code, 420);
            assert_eq!(reason, "test refusal");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn concurrent_transactions_share_one_socket() {
    let a = Responder::single(Quirk::None).await;
    let b = Responder::single(Quirk::DropFirst(1)).await;
    let silent = Responder::single(Quirk::Silent).await;
    let sock = socket().await;
    let mut client = StunClient::new(&sock, fast());
    let reqs = [a.primary(), b.primary(), silent.primary()].map(|server| BindingRequest {
        server,
        change: Change::NONE,
    });
    let out = client.bindings(&reqs, None).await;
    assert_eq!(out[0].as_ref().unwrap().from, a.primary());
    assert_eq!(out[1].as_ref().unwrap().transmissions, 2);
    assert!(matches!(out[2], Err(ReflectError::Timeout { .. })));
}

#[test]
fn requests_carry_change_request_only_when_asked() {
    let decoder = MessageDecoderBuilder::default().build();
    let plain = encode_request(Default::default(), Change::NONE).unwrap();
    assert_eq!(plain.len(), 20);
    let (msg, _) = decoder.decode(&plain).unwrap();
    assert!(msg.get::<ChangeRequest>().is_none());
    for (change, ip) in [(Change::PORT, false), (Change::IP_AND_PORT, true)] {
        let bytes = encode_request(Default::default(), change).unwrap();
        let (msg, _) = decoder.decode(&bytes).unwrap();
        let flags = msg
            .get::<ChangeRequest>()
            .unwrap()
            .as_change_request()
            .unwrap()
            .flags();
        assert!(flags.contains(ChangeRequestFlags::ChangePort));
        assert_eq!(flags.contains(ChangeRequestFlags::ChangeIp), ip);
    }
}
