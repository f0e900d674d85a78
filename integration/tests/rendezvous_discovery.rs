//! Three friends behind different NATs, their accounts split across the federation (one on
//! Prosody, one on ejabberd, one on both), run `chamber up` and discover each other within 2 s
//! of the last login. A stranger on the same server who announces the same ring (even in
//! directed presence, which servers deliver) is not discovered, and neither is a friend's
//! forged announce (signed over another JID).

mod common;
mod node_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chamber::account::{AccountConfig, Session, TlsMode};
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{NodeHome, RING_HEX, bound_jids, seen};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::presence::{Presence, Type};
use xmpp_ext::announce::Announce;
use xmpp_ext::{NodeSecret, RingSecret};

fn ring() -> RingSecret {
    let mut b = [0u8; 32];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&RING_HEX[2 * i..2 * i + 2], 16).expect("ring hex");
    }
    RingSecret::from_bytes(b)
}

/// Logs in as `cfg` from `ns` and sends presence with an announce for the lab ring signed by a
/// fresh key over `signed_for`, broadcast and directed to each of `targets`; stays online
/// `hold` so the presence is not withdrawn while the nodes look.
fn announce_as(
    ns: &chamber_lab::Netns,
    cfg: AccountConfig,
    signed_for: &str,
    targets: Vec<String>,
    hold: Duration,
) {
    let signed_for: BareJid = signed_for.parse().expect("jid");
    common::block_on_in(ns, move || async move {
        let mut s = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        // Any 64 bytes make a valid key; this one belongs to no node.
        let key = NodeSecret::from_bytes(&[0x5a; 64]);
        let element = Announce::new(&key, ring().ring_id(), &signed_for).to_element();
        let mut p = Presence::new(Type::None);
        p.payloads.push(element.clone());
        s.send(Stanza::Presence(p)).await.expect("send presence");
        for t in targets {
            let mut d = Presence::new(Type::None).with_to(t.parse::<Jid>().expect("jid"));
            d.payloads.push(element.clone());
            s.send(Stanza::Presence(d))
                .await
                .expect("send directed presence");
        }
        tokio::time::sleep(hold).await;
        s.close().await;
    });
}

#[test]
fn rendezvous_three_friends_discover_each_other_and_nobody_else() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("full", NatKind::FullCone),
        SiteSpec::new("symmetric", NatKind::Symmetric),
        SiteSpec::new("blocked", NatKind::UdpBlocked),
    ]);
    spec.users = 4; // user4 is a friend who runs no node (the forger)
    let lab = Lab::up(spec).expect("lab up");
    node_support::chamber_bin();
    let lab_up = started.elapsed();

    let sites: Vec<_> = ["full", "symmetric", "blocked"]
        .iter()
        .map(|n| lab.site(n).expect("site"))
        .collect();
    let homes: Vec<NodeHome> = ["a", "b", "c"]
        .iter()
        .map(|n| NodeHome::new(&lab, n))
        .collect();
    homes[0].add_account(&sites[0].host, &lab, 1, ALPHA, TlsMode::StartTls);
    homes[1].add_account(&sites[1].host, &lab, 2, BETA, TlsMode::Direct);
    homes[2].add_account(&sites[2].host, &lab, 3, ALPHA, TlsMode::Direct);
    homes[2].add_account(&sites[2].host, &lab, 3, BETA, TlsMode::StartTls);

    let t_up = Instant::now();
    let daemons: Vec<_> = homes
        .iter()
        .zip(&sites)
        .map(|(h, s)| h.up(&s.host))
        .collect();
    // Every account online.
    let statuses: Vec<_> = homes
        .iter()
        .zip(&daemons)
        .map(|(h, d)| {
            h.wait_status(Duration::from_secs(20), |s| {
                s.accounts
                    .iter()
                    .all(|a| a.bound_jid.is_some() && a.online_since_ms.is_some())
            })
            .unwrap_or_else(|| panic!("node not online:\n{}", d.tail(30)))
        })
        .collect();
    let all_bound: Vec<Vec<String>> = statuses.iter().map(bound_jids).collect();
    let last_login = statuses
        .iter()
        .flat_map(|s| s.accounts.iter().filter_map(|a| a.online_since_ms))
        .max()
        .expect("logins");
    // Each node must see every account of the two others (node c through both its accounts).
    let expected = |i: usize| -> BTreeSet<String> {
        (0..3)
            .filter(|j| *j != i)
            .flat_map(|j| all_bound[j].clone())
            .collect()
    };
    let mut discovered_ms: u64 = 0;
    for (i, h) in homes.iter().enumerate() {
        let want = expected(i);
        // Node c sees a and b through each of its two accounts.
        let entries = if i == 2 { 4 } else { 3 };
        let s = h
            .wait_status(Duration::from_secs(10), |s| {
                want.iter().all(|j| seen(s).contains(j)) && seen(s).len() == entries
            })
            .unwrap_or_else(|| {
                panic!(
                    "node {i} did not discover {want:?}; it sees {:?}\n{}",
                    h.status().map(|s| seen(&s)),
                    daemons[i].tail(40)
                )
            });
        let ring = s.rings.iter().find(|r| r.name == "lab").expect("ring");
        for f in &ring.friends {
            discovered_ms = discovered_ms.max(f.since_ms);
            assert_eq!(f.friend.fingerprint.len(), 64);
            assert_eq!(f.friend.address.len(), 40);
        }
        assert!(s.accounts.iter().all(|a| {
            a.mechanism
                .as_deref()
                .is_some_and(|m| m.starts_with("SCRAM"))
        }));
    }
    let discovery = discovered_ms.saturating_sub(last_login);
    eprintln!(
        "all online {} ms after start; discovered {discovery} ms after the last login",
        t_up.elapsed().as_millis()
    );
    assert!(
        discovery < 2000,
        "discovery took {discovery} ms after the last login"
    );

    // A stranger on Prosody announces the lab ring, broadcast and directed at node a and c.
    let targets = vec![all_bound[0][0].clone(), all_bound[2][0].clone()];
    let stranger = common::account(&lab, 1, ALPHA, TlsMode::StartTls);
    let mut stranger_cfg =
        AccountConfig::new(lab.stranger(ALPHA).jid, lab.stranger(ALPHA).password);
    stranger_cfg.server = stranger.server.clone();
    stranger_cfg.ca_file = stranger.ca_file.clone();
    // user4 (a friend of everyone, no node) sends an announce signed over user2@beta.lab.
    let forger = common::account(&lab, 4, BETA, TlsMode::StartTls);
    let victim = lab.account(2, BETA).jid;
    let public = &lab.sites()[0].host;
    let stranger_jid = lab.stranger(ALPHA).jid;
    std::thread::scope(|s| {
        let t1 = targets.clone();
        let stranger_jid = &stranger_jid;
        s.spawn(move || {
            announce_as(
                public,
                stranger_cfg,
                stranger_jid,
                t1,
                Duration::from_secs(3),
            )
        });
        s.spawn(|| {
            announce_as(
                public,
                forger,
                &victim,
                targets.clone(),
                Duration::from_secs(3),
            )
        });
        std::thread::sleep(Duration::from_millis(2500));
        for (i, h) in homes.iter().enumerate() {
            let s = h.status().expect("status");
            let intruders: Vec<String> = seen(&s)
                .into_iter()
                .filter(|j| j.starts_with("stranger@") || j.starts_with("user4@"))
                .collect();
            assert!(intruders.is_empty(), "node {i} discovered {intruders:?}");
            assert_eq!(
                seen(&s).len(),
                if i == 2 { 4 } else { 3 },
                "node {i}: {:?}",
                seen(&s)
            );
        }
    });
    let log = std::fs::read_to_string(&daemons[0].log).unwrap_or_default();
    assert!(
        log.contains("ignored: announce from a non-roster contact"),
        "no log line for the stranger"
    );
    assert!(
        log.contains("ignored: announce with a bad signature"),
        "no log line for the forgery"
    );
    // What a person sees: `chamber status`, then `chamber stop` ends the daemon cleanly.
    let out = homes[0].run(&sites[0].host, &["status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("chamber status of node a:\n{text}");
    assert!(
        text.contains("ring lab") && text.contains("2 friends' nodes"),
        "{text}"
    );
    assert!(
        text.contains("SASL SCRAM-") && text.contains("file store"),
        "{text}"
    );
    let out = homes[0].run(&sites[0].host, &["stop"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(homes[0].status().is_none(), "still answering after stop");
    eprintln!(
        "lab up {} ms, total {} ms",
        lab_up.as_millis(),
        started.elapsed().as_millis()
    );
}
