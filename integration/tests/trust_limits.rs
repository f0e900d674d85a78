//! Trust and abuse limits over real nodes (issue 8). Friends A and B link in ring `lab`. A
//! roster stranger and a friend who runs no node each flood A with 1000 Jingle
//! `session-initiate`s: A keeps answering `chamber status` and pings over the ring, and counts
//! what its per-JID rate limit refused. Then B's node key is replaced (its key file removed, the
//! daemon restarted): A refuses the new key — no friend, no link — logs it once and shows both
//! fingerprints in `chamber status`, and seals no invite to it; `chamber trust` without a
//! terminal refuses to accept unasked, with `--yes` accepts, and A and B link again. Between
//! the two, B's app floods the DHT: A, owner of about half the keys, refuses B's writes over
//! its per-writer rate and counts them; and a member's connect-to-me storm through A's knock
//! socket is answered within a per-source rate and refused beyond it.

mod common;
mod node_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use chamber::account::{AccountConfig, Session, TlsMode};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, Netns, SiteSpec};
use futures::FutureExt;
use node_support::{NodeHome, bound_jids, lab_ring, lab_secret, linked, online, unix_ms};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;

/// Logs in as `cfg` and sends `n` Jingle `session-initiate`s to `to` as fast as the stream
/// takes them (reading the error answers meanwhile).
fn flood(ns: &Netns, cfg: AccountConfig, to: String, n: usize) {
    common::block_on_in(ns, move || async move {
        let all = async move {
            let mut s = Session::login(&cfg).await.unwrap_or_else(|e| panic!("{e}"));
            let to: Jid = to.parse().expect("jid");
            for i in 0..n {
                let jingle: Element = format!(
                    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='flood{i}'/>"
                )
                .parse()
                .expect("a jingle element");
                let iq = Iq::Set {
                    from: None,
                    to: Some(to.clone()),
                    id: format!("f{i}"),
                    payload: jingle,
                };
                s.send(Stanza::Iq(iq)).await.expect("send an initiate");
                // Read the answers as they come, or the server stops reading us.
                while let Some(Some(_)) = s.next().now_or_never() {}
            }
            // The last answers, then a clean close (bounded: the server may still be answering).
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), s.next()).await
            {
            }
            let _ = tokio::time::timeout(Duration::from_secs(3), s.close()).await;
        };
        tokio::time::timeout(Duration::from_secs(90), all)
            .await
            .expect("the flood is sent within 90 s");
    });
}

/// Puts `n` values under `n` keys through the app socket of the daemon whose control socket
/// is `control`, all at once; returns how many were stored and how many refused.
fn dht_flood(control: &Path, n: usize) -> (usize, usize) {
    let socket = chamber::services::app_socket::socket_path(control);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = chamber::api::Client::connect(&socket, Some("lab"))
            .await
            .expect("app socket");
        let puts = (0..n).map(|i| {
            let c = &c;
            async move {
                c.dht_put(&format!("flood/{i}"), b"x", Duration::from_secs(600))
                    .await
                    .is_ok()
            }
        });
        let ok = futures::future::join_all(puts)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        (ok, n - ok)
    })
}

/// Sends `n` Jingle `session-initiate`s sealed with the knock key of the ring of `secret`, from one made-up member address, to the knock socket at `port` inside
/// `ns`; returns how many were answered `resource-constraint` and how many otherwise.
fn knock_storm(ns: &Netns, secret: xmpp_ext::RingSecret, port: u16, n: u32) -> (usize, usize) {
    use chamber::runtime::envelope::Envelope;
    use chamber::signal::{IqFailure, Reply};
    use chamber::warm::wire::{KnockKey, open, seal};
    let key = KnockKey::new(&secret);
    let from = brunet_compat::address::Address::ah([0x5a; 20]);
    common::block_on_in(ns, move || async move {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (mut refused, mut answered) = (0, 0);
        let mut count = |bytes: &[u8]| match open(&key, bytes).map(|k| k.envelope) {
            Ok(Envelope::SigReply {
                reply: Reply::Error(IqFailure::ResourceConstraint),
                ..
            }) => refused += 1,
            Ok(Envelope::SigReply { .. }) => answered += 1,
            _ => {}
        };
        let mut buf = vec![0u8; 16 * 1024];
        for i in 0..n {
            let xml = format!(
                "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='storm{i}'/>"
            );
            let env = Envelope::SigRequest {
                id: i,
                via: None,
                xml: xml.into_bytes(),
            };
            let knock = seal(&key, &from, unix_ms(), &env);
            sock.send_to(&knock, ("127.0.0.1", port))
                .await
                .expect("send a knock");
            while let Ok(len) = sock.try_recv(&mut buf) {
                count(&buf[..len]);
            }
            if i % 100 == 99 {
                // About 2000 a second: a storm, not a socket buffer overflow.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while let Ok(Ok(len)) =
            tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await
        {
            count(&buf[..len]);
        }
        (refused, answered)
    })
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn node_key_file(home: &Path) -> std::path::PathBuf {
    home.join("secrets")
        .join(format!("{}.secret", to_hex(b"node-key")))
}

#[test]
fn floods_are_limited_and_a_changed_node_key_is_refused_until_trusted() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("a", NatKind::FullCone),
        SiteSpec::new("b", NatKind::None),
        SiteSpec::new("x", NatKind::None),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let site = |n: &str| &lab.site(n).expect("site").host;
    let (a_ns, b_ns, x_ns) = (site("a"), site("b"), site("x"));
    let a = NodeHome::new(&lab, "a");
    let b = NodeHome::new(&lab, "b");
    a.add_account(a_ns, &lab, 1, ALPHA, TlsMode::StartTls);
    b.add_account(b_ns, &lab, 2, ALPHA, TlsMode::StartTls);
    let da = a.up(a_ns);
    let mut db = b.up(b_ns);
    let a_jid = bound_jids(&online(&a, &da))[0].clone();
    let b_first = online(&b, &db);
    let b_addr = lab_ring(&b_first).expect("lab ring").address.clone();
    let b_bare = lab.account(2, ALPHA).jid;
    a.wait_status(Duration::from_secs(30), |s| linked(s, &b_addr))
        .unwrap_or_else(|| panic!("A never linked to B:\n{}", da.tail(40)));
    eprintln!("[{:?}] A and B linked", started.elapsed());

    // --- Floods: a roster stranger and a friend without a node, 1000 initiates each. ---
    let cfg = |acc: chamber_lab::Account| {
        let mut c = AccountConfig::new(acc.jid, acc.password);
        c.server = Some(common::server_addr(ALPHA, TlsMode::StartTls));
        c.tls = TlsMode::StartTls;
        c.ca_file = Some(lab.ca_file());
        c
    };
    let senders = [cfg(lab.stranger(ALPHA)), cfg(lab.account(3, ALPHA))];
    let mut slowest = Duration::ZERO;
    let mut pings = 0;
    let flood_started = Instant::now();
    std::thread::scope(|sc| {
        let flooders: Vec<_> = senders
            .into_iter()
            .map(|c| {
                let to = a_jid.clone();
                sc.spawn(move || flood(x_ns, c, to, 1000))
            })
            .collect();
        // While they flood: status within a second or two, and pings over the ring answered.
        while flooders.iter().any(|t| !t.is_finished()) || pings == 0 {
            let t = Instant::now();
            a.status().expect("status during the flood");
            slowest = slowest.max(t.elapsed());
            let out = a.run(a_ns, &["ping", &b_bare, "--count", "1"], "");
            assert!(
                out.status.success(),
                "ping during the flood: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                da.tail(30)
            );
            pings += 1;
        }
        for t in flooders {
            t.join().expect("flooder");
        }
    });
    assert!(
        slowest < Duration::from_secs(2),
        "status took {slowest:?} during the flood"
    );
    // Each sender got its burst and the rate (over however long the flood took); the rest
    // was refused and counted.
    let flood_secs = flood_started.elapsed().as_secs() + 1;
    let allowed = 2 * (20 + 10 * flood_secs);
    let s = a
        .wait_status(Duration::from_secs(20), |s| {
            s.limits.initiates_limited >= 2000u64.saturating_sub(allowed)
        })
        .unwrap_or_else(|| {
            panic!(
                "initiates not limited ({flood_secs} s of flood): {:?}\n{}",
                a.status().map(|s| s.limits),
                da.tail(30)
            )
        });
    assert!(
        s.limits.initiates_limited <= 2000 - 2 * 20,
        "{:?}",
        s.limits
    );
    assert!(linked(&s, &b_addr), "the flood cost the link to B");
    let out = a.run(a_ns, &["status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("initiates over the rate"), "{text}");
    eprintln!(
        "[{:?}] floods done: {pings} pings answered, slowest status {slowest:?}, {:?}",
        started.elapsed(),
        s.limits
    );

    // --- A member's DHT flood: B's app writes 400 values under 400 keys at once. ---
    // A, as the owner of about half the keys, serves B a burst and a rate, refuses the rest
    // and counts them; the ring keeps answering.
    let (stored, refused) = dht_flood(&b.socket, 400);
    let s = a
        .wait_status(Duration::from_secs(10), |s| {
            lab_ring(s).is_some_and(|v| v.dht_writes_limited > 0)
        })
        .unwrap_or_else(|| panic!("A limited no DHT write ({stored} stored, {refused} refused)"));
    let limited = lab_ring(&s).expect("lab ring").dht_writes_limited;
    assert!(
        refused > 0 && stored > 0,
        "{stored} stored, {refused} refused"
    );
    assert!(linked(&s, &b_addr), "the DHT flood cost the link to B");
    let out = a.run(a_ns, &["ping", &b_bare, "--count", "1"], "");
    assert!(out.status.success(), "ping after the DHT flood");
    let text = String::from_utf8_lossy(&a.run(a_ns, &["status"], "").stdout).into_owned();
    assert!(text.contains(&format!("{limited} DHT writes")), "{text}");
    eprintln!(
        "[{:?}] DHT flood: {stored} stored, {refused} refused; A limited {limited}",
        started.elapsed()
    );

    // --- A member's connect-to-me storm: 2000 requests sealed with the ring's knock key, as
    // a member running a modified daemon could send them, from one ring address. A answers its
    // burst and rate, refuses the rest with `resource-constraint`, counts them, and the ring
    // keeps answering. ---
    let port = lab_ring(&s)
        .and_then(|v| v.warm.as_ref())
        .map(|w| w.knock_port)
        .expect("A's knock port");
    let storm_started = Instant::now();
    let (refused, answered) = knock_storm(a_ns, lab_secret(&b), port, 2000);
    let storm_secs = storm_started.elapsed().as_secs() + 1;
    let s = a
        .wait_status(Duration::from_secs(10), |s| {
            lab_ring(s).is_some_and(|v| v.signals_limited > 0)
        })
        .unwrap_or_else(|| panic!("A limited no request ({refused} refused, {answered} answered)"));
    let limited = lab_ring(&s).expect("lab ring").signals_limited;
    assert!(refused > 0, "no request was answered resource-constraint");
    assert!(
        answered <= (100 + 20 * storm_secs) as usize,
        "{answered} requests taken in {storm_secs} s"
    );
    assert!(linked(&s, &b_addr), "the storm cost the link to B");
    let out = a.run(a_ns, &["ping", &b_bare, "--count", "1"], "");
    assert!(out.status.success(), "ping after the storm");
    eprintln!(
        "[{:?}] connect-to-me storm: {refused} refused, {answered} taken; A counted {limited}",
        started.elapsed()
    );

    // --- B's node key changes: its key file is replaced and the daemon restarted. ---
    let old_fp = b_first.fingerprint.clone();
    db.terminate();
    std::fs::remove_file(node_key_file(&b.dir)).expect("remove B's node key");
    let db = b.up(b_ns);
    let b_second = online(&b, &db);
    let new_fp = b_second.fingerprint.clone();
    let new_addr = lab_ring(&b_second).expect("lab ring").address.clone();
    assert_ne!(old_fp, new_fp, "B made a new key");
    let warned = a
        .wait_status(Duration::from_secs(30), |s| {
            s.pinned_key_warnings.iter().any(|w| w.jid == b_bare)
        })
        .unwrap_or_else(|| panic!("A did not warn about B's key:\n{}", da.tail(40)));
    let w = &warned.pinned_key_warnings[0];
    assert_eq!((&w.pinned, &w.offered), (&vec![old_fp.clone()], &new_fp));
    // Long enough for B to offer links (it sees A as a friend): none is made.
    std::thread::sleep(Duration::from_secs(10));
    let s = a.status().expect("status");
    assert!(!linked(&s, &new_addr), "A linked to B's new key");
    assert!(
        s.rings
            .iter()
            .flat_map(|r| &r.friends)
            .all(|f| f.friend.fingerprint != new_fp),
        "B's new key is a friend"
    );
    assert!(s.limits.pinned_key_refusals >= 1, "{:?}", s.limits);
    let text = String::from_utf8_lossy(&a.run(a_ns, &["status"], "").stdout).into_owned();
    assert!(
        text.contains("WARNING") && text.contains("chamber trust") && text.contains(&b_bare),
        "{text}"
    );
    let log = std::fs::read_to_string(&da.log).unwrap_or_default();
    assert_eq!(
        log.matches("refused a changed node key").count(),
        1,
        "logged once:\n{}",
        da.tail(40)
    );
    // No invite is sealed to the new key either.
    let out = a.run(a_ns, &["ring", "invite", "lab", &b_bare], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no invite sent") && err.contains("chamber trust"),
        "{err}"
    );
    let pins = a.dir.join("xdg-data").join("chamber").join("pins.json");
    let mode = std::fs::metadata(&pins)
        .expect("pin file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // --- `chamber trust`: never without confirmation; with --yes, B links again. ---
    let out = a.run(a_ns, &["trust", &b_bare], "y\n");
    let err = String::from_utf8_lossy(&out.stderr);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && err.contains("not a terminal"),
        "{err}"
    );
    assert!(
        shown.contains("old (pinned)") && shown.contains("new  "),
        "{shown}"
    );
    assert!(
        !a.status().expect("status").pinned_key_warnings.is_empty(),
        "accepted without confirmation"
    );
    let out = a.run(a_ns, &["trust", &b_bare, "--yes"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("accepted"),
        "{out:?}"
    );
    let s = a
        .wait_status(Duration::from_secs(30), |s| linked(s, &new_addr))
        .unwrap_or_else(|| panic!("A did not link to B after trust:\n{}", da.tail(40)));
    assert!(s.pinned_key_warnings.is_empty());
    let again = a.run(a_ns, &["trust", &b_bare, "--yes"], "");
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("nothing to accept"),
        "{again:?}"
    );
    eprintln!("[{:?}] B's new key trusted and linked", started.elapsed());
}
