//! Ring membership over real nodes (issue 6): node A creates ring `club` and invites friend B
//! over XMPP; B's invite is pending (in `chamber status`, and still after a daemon restart)
//! until `chamber ring join club`; then A and B link in `club`. A stranger's invite and a
//! friend's forged one are logged and dropped; node C, configured with a ring named `club`
//! but another secret, never links in it. `chamber ring show --svg` draws the ring; B leaves.

mod common;
mod node_support;

use std::path::Path;
use std::time::{Duration, Instant};

use chamber::account::{AccountConfig, Session, TlsMode};
use chamber::node::NodeStatus;
use chamber::runtime::RingView;
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, Netns, SiteSpec};
use node_support::{Daemon, NodeHome, bound_jids};
use rand::SeedableRng;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use xmpp_ext::invite::Invite;
use xmpp_ext::{NodeSecret, RingSecret};

/// C's `club`: same name, another secret.
const OTHER_CLUB_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn club(s: &NodeStatus) -> Option<&RingView> {
    s.rings.iter().find(|r| r.name == "club")?.overlay.as_ref()
}

fn has_peer(s: &NodeStatus, addr: &str) -> bool {
    club(s).is_some_and(|v| v.peers.iter().any(|p| p.address == addr))
}

fn stdout(h: &NodeHome, ns: &Netns, args: &[&str]) -> String {
    let out = h.run(ns, args, "");
    assert!(
        out.status.success(),
        "chamber {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn online(h: &NodeHome, d: &Daemon) -> NodeStatus {
    h.wait_status(Duration::from_secs(20), |s| {
        s.accounts.iter().all(|a| a.online_since_ms.is_some())
    })
    .unwrap_or_else(|| panic!("node not online:\n{}", d.tail(30)))
}

/// The node key in a home's file keystore (the test plays an attacker who knows it).
fn node_key(home: &Path) -> NodeSecret {
    let file = home
        .join("secrets")
        .join(format!("{}.secret", to_hex(b"node-key")));
    let bytes: [u8; 64] = std::fs::read(&file)
        .expect("node key file")
        .try_into()
        .expect("64 bytes");
    NodeSecret::from_bytes(&bytes)
}

/// Logs in as `cfg` and sends `to` an invite to a fresh ring sealed to `recipient`, signed by a
/// fresh key over `signed_for`.
fn send_invite(
    ns: &Netns,
    cfg: AccountConfig,
    signed_for: &str,
    to: String,
    recipient: NodeSecret,
) {
    let signed_for: BareJid = signed_for.parse().expect("jid");
    common::block_on_in(ns, move || async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let ring = RingSecret::from_bytes([7; 32]);
        // Any 64 bytes make a valid key; this one belongs to no node.
        let inviter = NodeSecret::from_bytes(&[0x5a; 64]);
        let invite = Invite::seal(
            &mut rng,
            &inviter,
            &signed_for,
            &recipient.public(),
            "club",
            &ring,
            None,
        )
        .expect("seal");
        let mut s = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        let msg = invite.to_message(to.parse::<Jid>().expect("jid"));
        s.send(Stanza::Message(msg)).await.expect("send the invite");
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.close().await;
    });
}

/// Logs in as `cfg` and stays available (a plain client, no chamber) for `hold`.
fn online_without_chamber(ns: &Netns, cfg: AccountConfig, hold: Duration) {
    common::block_on_in(ns, move || async move {
        let mut s = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
        s.send(Stanza::Presence(Presence::new(PresenceType::None)))
            .await
            .expect("send presence");
        tokio::time::sleep(hold).await;
        s.close().await;
    });
}

#[test]
fn a_friend_is_invited_joins_and_links_while_strangers_and_other_secrets_stay_out() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("a", NatKind::FullCone),
        SiteSpec::new("b", NatKind::PortRestrictedCone),
        SiteSpec::new("c", NatKind::None),
    ]);
    spec.users = 4; // user4 is a friend of everyone who runs no node (the forger)
    let lab = Lab::up(spec).expect("lab up");
    let sites: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| lab.site(n).expect("site"))
        .collect();
    let homes: Vec<NodeHome> = ["a", "b", "c"]
        .iter()
        .map(|n| NodeHome::new(&lab, n))
        .collect();
    homes[0].add_account(&sites[0].host, &lab, 1, ALPHA, TlsMode::StartTls);
    homes[1].add_account(&sites[1].host, &lab, 2, BETA, TlsMode::Direct);
    homes[2].add_account(&sites[2].host, &lab, 3, ALPHA, TlsMode::StartTls);
    homes[0].set_rings(&[]);
    homes[1].set_rings(&[]);
    homes[2].set_rings(&[("club", OTHER_CLUB_HEX)]);
    // With no daemon, a ring is made on disk and joined at `chamber up`.
    let out = stdout(&homes[2], &sites[2].host, &["ring", "create", "extra"]);
    assert!(out.contains("takes effect at `chamber up`"), "{out}");
    let out = homes[2].run(&sites[2].host, &["ring", "join", "nothing"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no pending invite to a ring named `nothing`"),
        "{err}"
    );
    let mut daemons: Vec<Daemon> = homes
        .iter()
        .zip(&sites)
        .map(|(h, s)| h.up(&s.host))
        .collect();
    let b_jid = bound_jids(&online(&homes[1], &daemons[1]))[0].clone();
    online(&homes[0], &daemons[0]);
    let c_rings: Vec<String> = online(&homes[2], &daemons[2])
        .rings
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(c_rings, ["club", "extra"]);
    let (a, b, c) = (&homes[0], &homes[1], &homes[2]);
    let (a_ns, b_ns, c_ns) = (&sites[0].host, &sites[1].host, &sites[2].host);

    // A makes `club`: its running node is in it at once.
    let out = stdout(a, a_ns, &["ring", "create", "club"]);
    assert!(
        out.contains("ring `club`") && out.contains("running node is in it"),
        "{out}"
    );
    let a_club = a
        .wait_status(Duration::from_secs(5), |s| club(s).is_some())
        .expect("A runs club");
    let a_addr = club(&a_club).expect("club").address.clone();
    // Inviting someone who is not on the roster fails clearly.
    let out = a.run(
        a_ns,
        &["ring", "invite", "club", &lab.stranger(ALPHA).jid],
        "",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not on the roster"),
        "{out:?}"
    );

    // user4 is a friend, but runs no node and is not online.
    let out = a.run(
        a_ns,
        &["ring", "invite", "club", &lab.account(4, ALPHA).jid],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not online"),
        "{err}"
    );

    // Online with a plain client, no chamber: no resource answers the keys query.
    std::thread::scope(|scope| {
        let cfg = common::account(&lab, 4, ALPHA, TlsMode::StartTls);
        scope.spawn(|| online_without_chamber(&sites[2].host, cfg, Duration::from_secs(8)));
        let err = (0..20).find_map(|_| {
            std::thread::sleep(Duration::from_millis(250));
            let out = a.run(
                a_ns,
                &["ring", "invite", "club", &lab.account(4, ALPHA).jid],
                "",
            );
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            (!out.status.success() && !err.contains("is not online")).then_some(err)
        });
        let err = err.expect("user4 never seen online");
        assert!(
            err.contains("online but no resource answered as a chamber node"),
            "{err}"
        );
    });

    // A invites B (B's presence may need a moment to reach A).
    let t = Instant::now();
    let b_bare = lab.account(2, BETA).jid;
    let sent = (0..40).find_map(|_| {
        let out = a.run(a_ns, &["ring", "invite", "club", &b_bare], "");
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(250));
        None
    });
    let sent = sent.unwrap_or_else(|| panic!("invite never sent:\n{}", daemons[0].tail(30)));
    assert!(sent.contains(&b_jid), "{sent}");
    let invited = |s: &NodeStatus| {
        s.invites
            .iter()
            .any(|i| i.ring == "club" && i.from == lab.account(1, ALPHA).jid)
    };
    b.wait_status(Duration::from_secs(10), invited)
        .unwrap_or_else(|| panic!("B has no pending invite:\n{}", daemons[1].tail(30)));
    eprintln!(
        "invite sent and pending at B in {} ms",
        t.elapsed().as_millis()
    );
    let text = stdout(b, b_ns, &["status"]);
    assert!(
        text.contains("invited to ring club by user1@")
            && text.contains("run `chamber ring join club`"),
        "{text}"
    );

    // The invite survives a restart of B's daemon.
    daemons[1].terminate();
    daemons[1] = b.up(b_ns);
    let s = online(b, &daemons[1]);
    assert!(invited(&s), "invite lost in a restart: {:?}", s.invites);
    let b_jid = bound_jids(&s)[0].clone();

    // A stranger's invite (sealed to B's real key) and a friend's forged one are dropped.
    let server = |k: u32| common::account(&lab, k, ALPHA, TlsMode::StartTls);
    let mut stranger = AccountConfig::new(lab.stranger(ALPHA).jid, lab.stranger(ALPHA).password);
    (stranger.server, stranger.ca_file) = (server(1).server, server(1).ca_file);
    let victim = lab.account(1, ALPHA).jid;
    let stranger_jid = lab.stranger(ALPHA).jid;
    send_invite(
        &sites[2].host,
        stranger,
        &stranger_jid,
        b_jid.clone(),
        node_key(&b.dir),
    );
    send_invite(
        &sites[2].host,
        server(4),
        &victim,
        b_jid.clone(),
        node_key(&b.dir),
    );
    // Both are logged as dropped (a busy machine may take a moment to deliver them).
    let dropped = |log: &str| {
        log.contains("ignored: ring invite from a non-roster entity")
            && log.contains("ignored: ring invite that does not open")
    };
    let t = Instant::now();
    while !dropped(&std::fs::read_to_string(&daemons[1].log).unwrap_or_default()) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the stranger's and the forged invite were not both logged as dropped:\n{}",
            daemons[1].tail(30)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = b.status().expect("B status");
    assert_eq!(s.invites.len(), 1, "{:?}", s.invites);

    // B joins: A and B link in `club`; C, whose `club` has another secret, stays alone.
    let t = Instant::now();
    let out = stdout(b, b_ns, &["ring", "join", "club"]);
    assert!(out.contains("running node is in it"), "{out}");
    let b_club = b
        .wait_status(Duration::from_secs(30), |s| has_peer(s, &a_addr))
        .unwrap_or_else(|| panic!("B never linked A:\n{}", daemons[1].tail(40)));
    assert!(b_club.invites.is_empty());
    let b_addr = club(&b_club).expect("club").address.clone();
    a.wait_status(Duration::from_secs(10), |s| has_peer(s, &b_addr))
        .unwrap_or_else(|| panic!("A never linked B:\n{}", daemons[0].tail(40)));
    eprintln!(
        "A and B linked in club {} ms after the join",
        t.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_secs(3));
    let c_status = c.status().expect("C status");
    let c_view = club(&c_status).expect("C runs its club");
    assert!(
        c_view.peers.is_empty(),
        "C linked in club: {:?}",
        c_view.peers
    );
    for h in [a, b] {
        let s = h.status().expect("status");
        assert!(!has_peer(&s, &c_view.address), "C in {:?}", club(&s));
        assert_ne!(
            s.rings.iter().find(|r| r.name == "club").map(|r| &r.id),
            Some(&c_status.rings[0].id)
        );
    }

    // What people see: the list, the picture.
    let list = stdout(b, b_ns, &["ring", "list"]);
    assert!(
        list.contains("club (id ") && list.contains("secret in keystore"),
        "{list}"
    );
    let svg = a.dir.join("club.svg");
    let show = stdout(
        a,
        a_ns,
        &["ring", "show", "club", "--svg", &svg.to_string_lossy()],
    );
    eprintln!("chamber ring show on A:\n{show}");
    assert!(show.contains(&node_support_short(&b_addr)), "{show}");
    let drawn = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("#1565c0"),
        "{drawn}"
    );

    // B leaves: out of its config and keystore, and A loses it.
    let out = stdout(b, b_ns, &["ring", "leave", "club"]);
    assert!(out.contains("left"), "{out}");
    let s = b.status().expect("B status");
    assert!(s.rings.iter().all(|r| r.name != "club"), "{:?}", s.rings);
    let config = std::fs::read_to_string(&b.config).expect("config");
    assert!(!config.contains("club"), "{config}");
    a.wait_status(Duration::from_secs(15), |s| !has_peer(s, &b_addr))
        .unwrap_or_else(|| panic!("A still has B after it left:\n{}", daemons[0].tail(30)));
    let _ = c_ns;
    eprintln!("total {} ms", started.elapsed().as_millis());
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How `chamber ring show` abbreviates an address.
fn node_support_short(addr: &str) -> String {
    chamber::picture::short(addr)
}
