//! The services on a real ring (issue 7): three `chamber up` daemons on the loopback lab, and
//! apps using the library API ([`chamber::api::Client`]) against each daemon's app socket:
//! datagrams, requests, broadcast, the DHT, names, and streams, including a stream that
//! fails (it must end in an error, never look complete).

mod common;
mod node_support;
mod ring_support;

use std::time::Duration;

use chamber::api::{Client, Event};
use ring_support::start_loopback;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn app_socket(ring: &ring_support::Ring, i: usize) -> std::path::PathBuf {
    chamber::services::app_socket::socket_path(&ring.homes[i].socket)
}

async fn next_datagram(sub: &mut chamber::api::Subscription) -> chamber::api::Datagram {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Event::Datagram(d))) => return d,
            Ok(Some(Event::Request(_))) => continue,
            Ok(None) => panic!("subscription closed"),
            Err(_) => panic!("no datagram within 10 s"),
        }
    }
}

#[test]
fn apps_on_three_nodes_use_every_service() {
    if !common::lab_available() {
        return;
    }
    let ring = start_loopback(3, 0, false);
    ring.all_online();
    assert!(
        ring.wait_consistent(Duration::from_secs(30)).is_some(),
        "ring not consistent:\n{}",
        ring.dump()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a = Client::connect(&app_socket(&ring, 0), None).await.unwrap();
        let b = Client::connect(&app_socket(&ring, 1), Some("lab"))
            .await
            .unwrap();
        let c = Client::connect(&app_socket(&ring, 2), None).await.unwrap();
        assert_eq!(a.ring(), "lab");
        let wrong = Client::connect(&app_socket(&ring, 0), Some("nope")).await;
        assert!(wrong.is_err(), "a ring the node is not in must be refused");

        // Datagrams, and a request answered by a subscriber.
        let mut b_in = b.subscribe("echo").await.unwrap();
        let mut c_in = c.subscribe("chat").await.unwrap();
        a.send(&b.address(), "echo", b"hello b").await.unwrap();
        let d = next_datagram(&mut b_in).await;
        assert_eq!(
            (d.from, d.payload.as_slice()),
            (a.address(), &b"hello b"[..])
        );
        assert_eq!(d.broadcast_hops, None);
        let too_big = a.send(&b.address(), "echo", &[0; 5000]).await;
        assert!(too_big.is_err(), "an oversized datagram must be refused");

        let answering = tokio::spawn(async move {
            loop {
                match b_in.next().await {
                    Some(Event::Request(r)) => {
                        let mut answer = r.payload.clone();
                        answer.reverse();
                        r.respond(Ok(answer)).await.unwrap();
                    }
                    Some(Event::Datagram(_)) => {}
                    None => return,
                }
            }
        });
        let answer = a
            .request(&b.address(), "echo", b"abc", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(answer, b"cba");
        let none = a
            .request(&c.address(), "nobody-here", b"?", Duration::from_secs(10))
            .await;
        assert!(
            format!("{:?}", none.unwrap_err()).contains("no service"),
            "a request for a missing service must say so"
        );

        // A broadcast reaches every subscriber, signed by its sender.
        let mut a_chat = a.subscribe("chat").await.unwrap();
        b.broadcast("chat", b"to everyone", None).await.unwrap();
        for sub in [&mut a_chat, &mut c_in] {
            let d = next_datagram(sub).await;
            assert_eq!(d.from, b.address());
            assert_eq!(d.payload, b"to everyone");
            assert!(d.broadcast_hops.is_some());
        }

        // DHT values carry their writer; names resolve to the publisher; JIDs to friends.
        a.dht_put("share/x", b"from a", Duration::from_secs(60))
            .await
            .unwrap();
        c.dht_put("share/x", b"from c", Duration::from_secs(60))
            .await
            .unwrap();
        let mut got = b.dht_get("share/x").await.unwrap();
        got.sort_by(|x, y| x.value.cmp(&y.value));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            (got[0].writer, got[0].value.as_slice()),
            (a.address(), &b"from a"[..])
        );
        assert_eq!(
            (got[1].writer, got[1].value.as_slice()),
            (c.address(), &b"from c"[..])
        );
        a.dht_remove("share/x", b"from a").await.unwrap();
        let left = b.dht_get("share/x").await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        c.publish_name("carol-box", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(a.resolve("carol-box").await.unwrap(), c.address());
        assert!(a.resolve("nobody-box").await.is_err());
        let b_jid = "user2@alpha.lab";
        assert_eq!(a.resolve(b_jid).await.unwrap(), b.address());

        // Streams: 5 MB both ways byte-exact; a stream dropped unfinished is an error.
        let mut listener = b.listen("files").await.unwrap();
        let server = tokio::spawn(async move {
            let (mut s, from) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            let (mut s2, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            let r = s2.read_to_end(&mut sink).await;
            (from, got.len(), r.is_err())
        });
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut s = a.connect_stream(&b.address(), "files").await.unwrap();
        assert_eq!(s.peer(), b.address());
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert!(
            back == data,
            "the echoed stream differs ({} bytes)",
            back.len()
        );
        let mut s2 = a.connect_stream(&b.address(), "files").await.unwrap();
        s2.write_all(&data[..100_000]).await.unwrap();
        drop(s2);
        let (from, n, failed) = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((from, n), (a.address(), data.len()));
        assert!(
            failed,
            "a stream dropped without finishing must end in an error"
        );
        let refused = a.connect_stream(&c.address(), "files").await;
        assert!(refused.is_err(), "nobody listens for files at c");
        answering.abort();
    });
}
