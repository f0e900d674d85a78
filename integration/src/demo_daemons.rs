//! The demo's second act: every friend runs the real `chamber up` daemon in its site, with both
//! its accounts and one shared ring, and shows what `chamber status` tells a person: its accounts,
//! where its secrets are kept, its network, and the friends it discovered through presence.

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
