//! The lab's servers, used through chamber's own XMPP client: every site logs into both servers
//! through its NAT (TCP), XEP-0215 hands out TURN credentials that coturn and ejabberd accept, and
//! a message crosses the federation between Prosody and ejabberd.

mod common;

use std::time::Duration;

use chamber::account::{Session, TlsMode};
use chamber_lab::topology::{ALPHA, BETA, EJABBERD_IP, STUN_PRIMARY};
use chamber_lab::{Lab, LabSpec, NatKind};
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use xmpp_ext::extdisco::{ExternalService, ServiceKind, Transport};

/// `turnutils_peer`: coturn's UDP echo server, what the relays send to.
struct EchoPeer(std::process::Child);

impl EchoPeer {
    fn start(site: &chamber_lab::Site) -> EchoPeer {
        let child = site
            .host
            .command("turnutils_peer")
            .args(["-L", &site.addrs.host.to_string(), "-p", "3480"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start turnutils_peer");
        std::thread::sleep(Duration::from_millis(200));
        EchoPeer(child)
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// From inside `site`, allocates a relay on `server` with the credentials (the webrtc-rs TURN
/// client, the one our ICE stack uses) and bounces a datagram off the echo peer through it.
fn turn_relays(
    site: &chamber_lab::Site,
    server: String,
    user: String,
    pass: String,
    peer: String,
) -> Result<(), String> {
    common::block_on_in(&site.host, move || async move {
        use webrtc_util::Conn;
        let sock = tokio::net::UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(|e| e.to_string())?;
        let client = turn::client::Client::new(turn::client::ClientConfig {
            stun_serv_addr: server.clone(),
            turn_serv_addr: server,
            username: user,
            password: pass,
            realm: String::new(),
            software: "chamber-lab-test".into(),
            rto_in_ms: 200,
            conn: std::sync::Arc::new(sock),
            vnet: None,
        })
        .await
        .map_err(|e| e.to_string())?;
        client.listen().await.map_err(|e| e.to_string())?;
        let relay = tokio::time::timeout(Duration::from_secs(5), client.allocate())
            .await
            .map_err(|_| "no allocation within 5 s".to_string())?
            .map_err(|e| format!("allocation refused: {e}"))?;
        let peer: std::net::SocketAddr = peer.parse().map_err(|e| format!("{e}"))?;
        let mut buf = [0u8; 64];
        for _ in 0..10 {
            relay
                .send_to(b"chamber-turn-probe", peer)
                .await
                .map_err(|e| e.to_string())?;
            if let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_millis(300), relay.recv_from(&mut buf)).await
            {
                let _ = client.close().await;
                return if &buf[..n] == b"chamber-turn-probe" && from == peer {
                    Ok(())
                } else {
                    Err(format!("unexpected echo from {from}"))
                };
            }
        }
        let _ = client.close().await;
        Err("no echo came back through the relay".into())
    })
}

#[test]
fn the_lab_servers_work_from_every_site() {
    if !common::lab_available() {
        return;
    }
    let mut lab = Lab::up(LabSpec::one_of_each()).expect("lab up");

    // 1. From every site, user k logs into both servers through its NAT, with SCRAM over TLS.
    std::thread::scope(|s| {
        for (i, site) in lab.sites().iter().enumerate() {
            let k = i as u32 + 1;
            let cfgs = [
                common::account(&lab, k, ALPHA, TlsMode::StartTls),
                common::account(
                    &lab,
                    k,
                    BETA,
                    if i % 2 == 0 {
                        TlsMode::Direct
                    } else {
                        TlsMode::StartTls
                    },
                ),
            ];
            let name = site.spec.name.clone();
            s.spawn(move || {
                let infos = common::block_on_in(&site.host, move || async move {
                    let mut out = Vec::new();
                    for cfg in cfgs {
                        let session = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
                        out.push(session.info().clone());
                        session.close().await;
                    }
                    out
                });
                for info in infos {
                    assert!(
                        info.mechanism.starts_with("SCRAM-"),
                        "{name}: {} used {}",
                        info.bound_jid,
                        info.mechanism
                    );
                    eprintln!(
                        "{name}: {} via {} ({:?}) in {} ms",
                        info.bound_jid, info.mechanism, info.tls, info.login_ms
                    );
                }
            });
        }
    });

    // 2. XEP-0215 on each server returns STUN and TURN with credentials the TURN servers accept.
    let site = lab.site(NatKind::None.as_str()).expect("public site");
    // coturn's UDP echo peer on the public site is what relays send to; the TURN client sits
    // behind the port-restricted NAT, as a real user would.
    let echo = EchoPeer::start(site);
    let peer = site.addrs.host.to_string();
    let client_site = lab
        .site(NatKind::PortRestrictedCone.as_str())
        .expect("port-restricted site");
    for (domain, turn_ip) in [(ALPHA, STUN_PRIMARY), (BETA, EJABBERD_IP)] {
        let cfg = common::account(&lab, 1, domain, TlsMode::StartTls);
        let services: Vec<ExternalService> = common::block_on_in(&site.host, move || async move {
            let mut s = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
            let list = s
                .external_services(Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            s.close().await;
            list
        });
        let stun = services
            .iter()
            .find(|s| s.kind == ServiceKind::Stun)
            .unwrap_or_else(|| panic!("{domain}: no STUN in {services:?}"));
        assert_eq!(stun.host, turn_ip.to_string(), "{domain} STUN host");
        let turn = services
            .iter()
            .find(|s| s.kind == ServiceKind::Turn && s.username.is_some())
            .unwrap_or_else(|| panic!("{domain}: no TURN with credentials in {services:?}"));
        assert!(
            services
                .iter()
                .any(|s| s.kind == ServiceKind::Turn && s.transport == Transport::Tcp),
            "{domain}: no TURN over TCP (the way out for UDP-blocked sites) in {services:?}"
        );
        let (user, pass) = (
            turn.username.clone().unwrap_or_default(),
            turn.password.clone().unwrap_or_default(),
        );
        let server = format!("{}:{}", turn.host, turn.port_or_default().unwrap_or(3478));
        let peer = format!("{peer}:3480");
        if let Err(e) = turn_relays(
            client_site,
            server.clone(),
            user.clone(),
            pass,
            peer.clone(),
        ) {
            panic!("{domain}: TURN at {server} with the XEP-0215 credentials failed: {e}");
        }
        let bad = turn_relays(client_site, server, user, "wrong-password".into(), peer);
        assert!(bad.is_err(), "{domain}: TURN accepted a wrong password");
    }
    drop(echo);

    // 3. A message from alpha.lab reaches beta.lab across the federation.
    let (from, to) = (
        common::account(&lab, 1, ALPHA, TlsMode::StartTls),
        common::account(&lab, 2, BETA, TlsMode::StartTls),
    );
    let to_jid = to.jid.clone();
    let body = format!("across the federation {}", lab.id());
    let expect = body.clone();
    let received = common::block_on_in(&site.host, move || async move {
        let mut rx = Session::login(&to).await.unwrap_or_else(|e| panic!("{e}"));
        rx.send(Presence::available().into())
            .await
            .expect("presence");
        let mut tx = Session::login(&from)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let msg = Message::chat(Some(to_jid.parse().expect("jid"))).with_body("en".into(), body);
        tx.send(msg.into()).await.expect("send");
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(st) = rx.next().await {
                if let tokio_xmpp::Stanza::Message(m) = st
                    && let Some((_, b)) = m.get_best_body(vec![])
                {
                    return Some(b.clone());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        tx.close().await;
        rx.close().await;
        got
    });
    assert_eq!(
        received.as_deref(),
        Some(expect.as_str()),
        "federated message"
    );

    // 4. Restarted servers come back with their accounts and certificates.
    for (what, domain) in [("Prosody", ALPHA), ("ejabberd", BETA)] {
        lab.restart_server(what)
            .unwrap_or_else(|e| panic!("restart {what}: {e}"));
        let cfg = common::account(&lab, 1, domain, TlsMode::StartTls);
        let site = lab.site(NatKind::None.as_str()).expect("public site");
        let info = common::block_on_in(&site.host, move || async move {
            let s = Session::login(&cfg)
                .await
                .unwrap_or_else(|e| panic!("after restart: {e}"));
            let info = s.info().clone();
            s.close().await;
            info
        });
        assert!(
            info.mechanism.starts_with("SCRAM-"),
            "{what} after restart: {info:?}"
        );
    }
    assert!(
        lab.start_server("Prosody").is_err(),
        "a running server cannot be started twice"
    );
}
