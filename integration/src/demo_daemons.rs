//! The demo's second act: every friend runs the real `chamber up` daemon in its site, with both
//! its accounts and one shared ring. Their nodes discover each other through presence, link
//! across their NATs and form one ring; each shows what `chamber status` tells a person (its
//! accounts, network, friends, ring neighbours and every link with its kind), one draws the
//! ring with `chamber ring show`, and two friends behind the hardest NATs ping over the ring;
//! then they chat in a room and share a file (`demo_apps.rs`).

use std::time::{Duration, Instant};

use anyhow::Context;
use chamber::account::TlsMode;
use chamber_lab::Lab;
use chamber_lab::node::{Daemon, NodeHome};
use chamber_lab::topology::{ALPHA, BETA};

/// The ring every demo friend is in (its secret would normally come with an invite).
const RING: &str = "friends";

/// What one daemon showed.
#[derive(serde::Serialize)]
pub(super) struct NodeReport {
    site: String,
    status: chamber::node::NodeStatus,
}

/// Starts a daemon per site, waits until every friend sees every other, prints their status.
pub(super) fn run(lab: &Lab, json: bool) -> anyhow::Result<Vec<NodeReport>> {
    eprintln!("\nstarting `chamber up` for every friend, all in ring `{RING}`…");
    let secret = random_hex()?;
    let mut homes: Vec<(String, NodeHome, Daemon)> = Vec::new();
    for (i, site) in lab.sites().iter().enumerate() {
        let k = i as u32 + 1;
        let home = NodeHome::new(lab, &site.spec.name, RING, &secret)?;
        for domain in [ALPHA, BETA] {
            home.add_account(&site.host, lab, k, domain, TlsMode::StartTls)
                .with_context(|| format!("chamber account add at site {}", site.spec.name))?;
        }
        let daemon = home.up(&site.host)?;
        homes.push((site.spec.name.clone(), home, daemon));
    }
    let others = homes.len().saturating_sub(1);
    let start = Instant::now();
    let consistent = wait_ring(&homes, Duration::from_secs(60));
    match consistent {
        Some(t) => eprintln!(
            "the {} friends' nodes formed one consistent ring {:.1} s after starting",
            homes.len(),
            t.as_secs_f64()
        ),
        None => eprintln!("the ring was not consistent after 60 s; showing it as it is"),
    }
    let mut reports = Vec::new();
    for (site, home, daemon) in &homes {
        let status = home
            .wait_status(Duration::from_secs(30), |s| friends_seen(s) >= others)
            .or_else(|| home.status())
            .with_context(|| {
                format!(
                    "the daemon at {site} does not answer; its log:\n{}",
                    daemon.tail(20)
                )
            })?;
        if !json {
            let text = home.run(&lab.site(site).expect("site exists").host, &["status"], "")?;
            println!("── friend at site `{site}`: chamber status");
            println!("{}", String::from_utf8_lossy(&text.stdout));
        }
        reports.push(NodeReport {
            site: site.clone(),
            status,
        });
    }
    if !json && let Some((site, home, _)) = homes.first() {
        let ns = &lab.site(site).expect("site exists").host;
        let svg = home.dir.join("ring.svg");
        let svg_arg = svg.to_string_lossy().to_string();
        let text = home.run(ns, &["ring", "show", RING, "--svg", &svg_arg], "")?;
        println!("── friend at site `{site}`: chamber ring show {RING}");
        println!("{}", String::from_utf8_lossy(&text.stdout));
        println!("(an SVG picture of the ring is in {})\n", svg.display());
        ping_hardest(lab, &homes)?;
        if let Err(e) = super::apps::run(lab, &homes) {
            eprintln!("the apps part of the demo failed: {e:#}");
        }
    }
    let seen: Vec<usize> = reports.iter().map(|r| friends_seen(&r.status)).collect();
    eprintln!(
        "every friend saw {} of its {others} friends within {:.1} s of starting",
        seen.iter().min().copied().unwrap_or(0),
        start.elapsed().as_secs_f64()
    );
    Ok(reports)
}

/// How many distinct friends (bare JIDs of other nodes) a node sees in the demo ring.
fn friends_seen(s: &chamber::node::NodeStatus) -> usize {
    let mut nodes: Vec<&str> = s
        .rings
        .iter()
        .filter(|r| r.name == RING)
        .flat_map(|r| r.friends.iter().map(|f| f.friend.address.as_str()))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes.len()
}

fn random_hex() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Waits until every node's nearest left and right peers are its true ring neighbours.
fn wait_ring(homes: &[(String, NodeHome, Daemon)], limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let views: Option<Vec<chamber::runtime::RingView>> = homes
            .iter()
            .map(|(_, h, _)| {
                let s = h.status()?;
                s.rings.into_iter().find(|r| r.name == RING)?.overlay
            })
            .collect();
        if let Some(views) = views
            && consistent(&views)
        {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn consistent(views: &[chamber::runtime::RingView]) -> bool {
    let mut addrs: Vec<brunet_compat::address::Address> = views
        .iter()
        .filter_map(|v| v.address.parse().ok())
        .collect();
    addrs.sort();
    let n = addrs.len();
    n == views.len()
        && views.iter().all(|v| {
            let Some(k) = addrs.iter().position(|a| a.to_string() == v.address) else {
                return false;
            };
            v.left.first() == Some(&addrs[(k + 1) % n].to_string())
                && v.right.first() == Some(&addrs[(k + n - 1) % n].to_string())
        })
}

/// `chamber ping` from the friend behind the symmetric NAT to the one whose UDP is blocked
/// (neither can reach the other directly), over the ring.
fn ping_hardest(lab: &Lab, homes: &[(String, NodeHome, Daemon)]) -> anyhow::Result<()> {
    let find = |kind: chamber_lab::NatKind| {
        homes
            .iter()
            .find(|(site, _, _)| lab.site(site).is_some_and(|s| s.spec.nat == kind))
    };
    let (Some(from), Some(to)) = (
        find(chamber_lab::NatKind::Symmetric),
        find(chamber_lab::NatKind::UdpBlocked),
    ) else {
        return Ok(());
    };
    let target =
        to.1.status()
            .and_then(|s| s.rings.into_iter().find(|r| r.name == RING)?.overlay)
            .map(|o| o.address)
            .context("the UDP-blocked friend's node has no ring address")?;
    let ns = &lab.site(&from.0).expect("site exists").host;
    let out = from.1.run(ns, &["ping", "-c", "3", &target], "")?;
    println!(
        "── friend at `{}` (symmetric NAT) pings the one at `{}` (UDP blocked) over the ring",
        from.0, to.0
    );
    println!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
