//! A hostile XMPP server (issue 8). Friends A and B, both on alpha.lab, link in ring `lab`, so A
//! pins B's key. Then Prosody turns hostile (the lab's `mod_chamber_mitm`): everything it
//! delivers from B carries an announce and a node record signed by an attacker's key for B's
//! JID, and ICE candidates with other ports. B restarts without its peer cache, so XMPP is its
//! only way back. A refuses the attacker's key, links to it nowhere, and shows the user a
//! pinned-key warning with both fingerprints; A and B do not link while the server lies. Once
//! the server is honest again, they link as before, with B's own key.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::node::NodeStatus;
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{Daemon, NodeHome, lab_ring, lab_secret, linked, online};
use xmpp_ext::NodeSecret;
use xmpp_ext::announce::Announce;
use xmpp_ext::record::{Capabilities, NodeRecord};

/// Restarts B from cold: without its peer cache, it can only come back through XMPP.
fn restart_cold(b: &NodeHome, db: &mut Daemon, ns: &chamber_lab::Netns) -> NodeStatus {
    db.terminate();
    let cache = b.dir.join("xdg-data").join("chamber").join("peers.json");
    let _ = std::fs::remove_file(&cache);
    *db = b.up(ns);
    online(b, db)
}

#[test]
fn a_hostile_server_cannot_swap_a_friends_key() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("a", NatKind::None),
        SiteSpec::new("b", NatKind::None),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let site = |n: &str| &lab.site(n).expect("site").host;
    let (a_ns, b_ns) = (site("a"), site("b"));
    let a = NodeHome::new(&lab, "a");
    let b = NodeHome::new(&lab, "b");
    a.add_account(a_ns, &lab, 1, ALPHA, TlsMode::StartTls);
    b.add_account(b_ns, &lab, 2, ALPHA, TlsMode::StartTls);
    let da = a.up(a_ns);
    let mut db = b.up(b_ns);
    online(&a, &da);
    let b_first = online(&b, &db);
    let b_addr = lab_ring(&b_first).expect("lab ring").address.clone();
    let b_bare = lab.account(2, ALPHA).jid;
    a.wait_status(Duration::from_secs(30), |s| linked(s, &b_addr))
        .unwrap_or_else(|| panic!("A never linked to B:\n{}", da.tail(40)));
    eprintln!("[{:?}] A and B linked; A pinned B's key", started.elapsed());

    // The attacker's key, with an announce and a record for B's JID that it signs itself.
    let ring = lab_secret(&b).ring_id();
    let attacker = NodeSecret::generate(&mut rand::rngs::OsRng);
    let attacker_fp = attacker.public().fingerprint().to_hex();
    let attacker_addr =
        brunet_compat::address::Address::from_bytes(attacker.public().overlay_address().to_bytes())
            .to_string();
    let announce =
        String::from(&Announce::new(&attacker, ring, &b_bare.parse().expect("jid")).to_element());
    let record =
        String::from(&NodeRecord::new(&attacker, ring, Capabilities::all(), 1).to_element());
    lab.prosody_mitm(Some((&b_bare, &announce, &record)))
        .expect("make Prosody hostile");

    let b_second = restart_cold(&b, &mut db, b_ns);
    assert_eq!(b_second.fingerprint, b_first.fingerprint, "B kept its key");
    let warned = a
        .wait_status(Duration::from_secs(30), |s| {
            s.pinned_key_warnings.iter().any(|w| w.jid == b_bare)
        })
        .unwrap_or_else(|| panic!("A did not warn about the swapped key:\n{}", da.tail(40)));
    let w = warned
        .pinned_key_warnings
        .iter()
        .find(|w| w.jid == b_bare)
        .expect("the warning");
    assert_eq!(
        (&w.pinned, &w.offered),
        (&vec![b_first.fingerprint.clone()], &attacker_fp),
        "the warning names B's pinned key and the key the server offered"
    );
    // Long enough for both to try links over the lying server: none is made.
    std::thread::sleep(Duration::from_secs(12));
    let s = a.status().expect("status");
    assert!(
        !linked(&s, &attacker_addr),
        "A linked to the attacker's key"
    );
    assert!(
        !linked(&s, &b_addr),
        "A linked to B through a server that rewrote B's offers"
    );
    assert!(s.limits.pinned_key_refusals >= 1, "{:?}", s.limits);
    let out = a.run(a_ns, &["status"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("WARNING") && text.contains(&b_bare), "{text}");
    eprintln!(
        "[{:?}] hostile server: {} refusals of the swapped key, no link",
        started.elapsed(),
        s.limits.pinned_key_refusals
    );

    // The server is honest again: B comes back with its own key and they link.
    lab.prosody_mitm(None).expect("make Prosody honest");
    restart_cold(&b, &mut db, b_ns);
    let t = Instant::now();
    a.wait_status(Duration::from_secs(40), |s| linked(s, &b_addr))
        .unwrap_or_else(|| panic!("A and B did not link again:\n{}", da.tail(40)));
    eprintln!(
        "[{:?}] honest again: linked {} ms after B's restart",
        started.elapsed(),
        t.elapsed().as_millis()
    );
}
