//! A daemon's accounts through connection trouble, with a friend watching:
//! 1. the TCP connection is torn down under it (`ss -K`): it reconnects and *resumes* its
//!    XEP-0198 session — same full JID, no presence round, the friend never sees it go;
//! 2. the path to the server goes dead silently (packets dropped at the NAT, as when a laptop
//!    changes network): keepalives go unanswered and the account notices (within 30 s by
//!    default, 12 s with the tighter `[timing]` used here), retries with backoff, and once the
//!    path is back it resumes again.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::{LinkState, TlsMode};
use chamber::config::Timing;
use chamber_lab::topology::{ALPHA, BETA, PROSODY_IP};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{NodeHome, bound_jids, seen};

const BLOCK: &str = "table inet chamber_test {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip daddr 198.18.0.10 drop
    ip saddr 198.18.0.10 drop
  }
}";

#[test]
fn accounts_resume_after_a_cut_and_notice_a_dead_path() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("home", NatKind::PortRestrictedCone),
        SiteSpec::new("friend", NatKind::FullCone),
    ]);
    spec.coturn = false;
    let lab = Lab::up(spec).expect("lab up");
    node_support::chamber_bin();
    let lab_up = started.elapsed();
    let home_site = lab.site("home").expect("site");
    let friend_site = lab.site("friend").expect("site");
    let node = NodeHome::new(&lab, "node");
    let friend = NodeHome::new(&lab, "friend");
    node.add_account(&home_site.host, &lab, 1, ALPHA, TlsMode::StartTls);
    friend.add_account(&friend_site.host, &lab, 2, BETA, TlsMode::StartTls);
    // Tighter than the defaults (20 + 10 s, friends probed after 20 s) to keep the test short.
    let timing = Timing {
        silence_secs: Some(8),
        dead_after_secs: Some(4),
        friend_probe_secs: Some(5),
        friend_timeout_secs: Some(4),
        ..Timing::default()
    };
    node.set_timing(timing.clone());
    friend.set_timing(timing);
    let d = node.up(&home_site.host);
    let _f = friend.up(&friend_site.host);
    let s = node
        .wait_status(Duration::from_secs(20), |s| {
            s.accounts[0].state == LinkState::Online
        })
        .unwrap_or_else(|| panic!("not online:\n{}", d.tail(20)));
    let jid = bound_jids(&s);
    assert!(s.accounts[0].stream_management, "Prosody offers XEP-0198");
    friend
        .wait_status(Duration::from_secs(10), |s| seen(s) == jid)
        .expect("the friend discovers the node");

    // 1. Tear the TCP connection down on the node's side.
    let t = Instant::now();
    let out = home_site
        .host
        .command("ss")
        .args(["-K", "dst", &PROSODY_IP.to_string(), "dport", "=", "5222"])
        .output()
        .expect("run ss -K");
    assert!(
        out.status.success(),
        "ss -K: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = node
        .wait_status(Duration::from_secs(10), |s| s.accounts[0].resumptions >= 1)
        .unwrap_or_else(|| panic!("no resumption:\n{}", d.tail(30)));
    eprintln!("cut: resumed after {} ms", t.elapsed().as_millis());
    assert_eq!(s.accounts[0].state, LinkState::Online);
    assert_eq!(bound_jids(&s), jid, "a resumed session keeps its full JID");
    assert_eq!(s.accounts[0].reconnects, 0, "no new session");
    assert_eq!(
        seen(&friend.status().expect("friend status")),
        jid,
        "the friend still sees it"
    );

    // 2. A silently dead path: nothing in or out between the site and Prosody.
    home_site.router.nft(BLOCK).expect("block Prosody");
    let t = Instant::now();
    let s = node.wait_status(Duration::from_secs(45), |s| {
        s.accounts[0].state != LinkState::Online
    });
    let noticed = t.elapsed();
    let s = s.unwrap_or_else(|| panic!("dead path not noticed:\n{}", d.tail(30)));
    eprintln!(
        "dead path: noticed after {} ms ({:?})",
        noticed.as_millis(),
        s.accounts[0].state
    );
    assert!(noticed < Duration::from_secs(14), "{noticed:?}");
    // Let it retry (and fail) once or twice, then open the path again.
    std::thread::sleep(Duration::from_secs(2));
    home_site
        .router
        .exec("nft", ["delete", "table", "inet", "chamber_test"])
        .expect("unblock");
    let t = Instant::now();
    let s = node
        .wait_status(Duration::from_secs(30), |s| {
            s.accounts[0].state == LinkState::Online
        })
        .unwrap_or_else(|| panic!("not back:\n{}", d.tail(30)));
    let a = &s.accounts[0];
    eprintln!(
        "path back: online after {} ms; resumptions {}, reconnects {}, attempts so far {}",
        t.elapsed().as_millis(),
        a.resumptions,
        a.reconnects,
        a.attempts
    );
    assert!(a.resumptions + a.reconnects >= 2, "{a:?}");
    // The friend's pings went unanswered while the path was dead, so it may have taken the node
    // down; it keeps probing, and the resumed node answers within one probe interval (5 s).
    let t = Instant::now();
    friend
        .wait_status(Duration::from_secs(12), |f| {
            bound_jids(&s).iter().all(|j| seen(f).contains(j))
        })
        .expect("the friend sees the node again");
    eprintln!(
        "the friend sees the node again after {} ms",
        t.elapsed().as_millis()
    );
    eprintln!(
        "lab up {} ms, total {} ms",
        lab_up.as_millis(),
        started.elapsed().as_millis()
    );
}
