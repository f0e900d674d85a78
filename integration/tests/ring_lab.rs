//! The private ring over real links (issue 6): friends behind every kind of NAT, accounts
//! split across the federation, run `chamber up`; their nodes form one consistent ring (every
//! node's left and right neighbours are the true ones) and every ordered pair pings over it.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use brunet_compat::address::Address;
use chamber::account::TlsMode;
use chamber::node::NodeStatus;
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{Daemon, NodeHome};

const KINDS: [(&str, NatKind); 6] = [
    ("open", NatKind::None),
    ("full", NatKind::FullCone),
    ("restricted", NatKind::RestrictedCone),
    ("port", NatKind::PortRestrictedCone),
    ("symmetric", NatKind::Symmetric),
    ("blocked", NatKind::UdpBlocked),
];

struct Ring {
    lab: Lab,
    homes: Vec<NodeHome>,
    daemons: Vec<Daemon>,
    names: Vec<String>,
}

/// `per_kind` sites of each NAT kind, one node each; odd nodes log into ejabberd.
fn start(per_kind: usize) -> Ring {
    let mut sites = Vec::new();
    for k in 0..per_kind {
        for (name, kind) in KINDS {
            sites.push(SiteSpec::new(format!("{name}{k}"), kind));
        }
    }
    let mut spec = LabSpec::with_sites(sites);
    spec.users = (6 * per_kind) as u32;
    let lab = Lab::up(spec).expect("lab up");
    let names: Vec<String> = (0..per_kind)
        .flat_map(|k| KINDS.iter().map(move |(n, _)| format!("{n}{k}")))
        .collect();
    let homes: Vec<NodeHome> = names.iter().map(|n| NodeHome::new(&lab, n)).collect();
    for (i, (h, n)) in homes.iter().zip(&names).enumerate() {
        let site = lab.site(n).expect("site");
        let (domain, tls) = if i % 2 == 0 {
            (ALPHA, TlsMode::StartTls)
        } else {
            (BETA, TlsMode::Direct)
        };
        h.add_account(&site.host, &lab, i as u32 + 1, domain, tls);
    }
    let daemons = homes
        .iter()
        .zip(&names)
        .map(|(h, n)| h.up(&lab.site(n).expect("site").host))
        .collect();
    Ring {
        lab,
        homes,
        daemons,
        names,
    }
}

fn overlay(s: &NodeStatus) -> Option<&chamber::runtime::RingView> {
    s.rings.iter().find(|r| r.name == "lab")?.overlay.as_ref()
}

impl Ring {
    fn statuses(&self) -> Vec<Option<NodeStatus>> {
        self.homes.iter().map(|h| h.status()).collect()
    }

    /// Whether every node's nearest left and right peers are its true ring neighbours.
    fn consistent(statuses: &[Option<NodeStatus>]) -> bool {
        let Some(views): Option<Vec<_>> = statuses
            .iter()
            .map(|s| s.as_ref().and_then(overlay))
            .collect()
        else {
            return false;
        };
        let mut addrs: Vec<Address> = views
            .iter()
            .filter_map(|v| v.address.parse().ok())
            .collect();
        if addrs.len() != views.len() {
            return false;
        }
        addrs.sort();
        let n = addrs.len();
        views.iter().all(|v| {
            let me: Address = v.address.parse().expect("address");
            let k = addrs.iter().position(|a| *a == me).expect("listed");
            let left = addrs[(k + 1) % n].to_string();
            let right = addrs[(k + n - 1) % n].to_string();
            v.left.first() == Some(&left) && v.right.first() == Some(&right)
        })
    }

    fn wait_consistent(&self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if Self::consistent(&self.statuses()) {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for ((s, d), n) in self.statuses().iter().zip(&self.daemons).zip(&self.names) {
            out += &format!("=== {n}\n");
            match s {
                Some(s) => out += &s.to_string(),
                None => out += "no status\n",
            }
            out += &d.tail(15);
        }
        out
    }

    fn all_online(&self) -> u64 {
        let t = Instant::now();
        loop {
            let st = self.statuses();
            let logins: Option<Vec<u64>> = st
                .iter()
                .map(|s| s.as_ref()?.accounts.first()?.online_since_ms)
                .collect();
            if let Some(l) = logins {
                return l.into_iter().max().expect("nodes");
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "not all online:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ping(&self, from: usize, to: usize) -> Result<String, String> {
        let st = self.homes[to].status().ok_or("no status")?;
        let target = overlay(&st).ok_or("no ring")?.address.clone();
        let ns = &self.lab.site(&self.names[from]).expect("site").host;
        let out = self.homes[from].run(ns, &["ping", "-c", "1", &target], "");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn six_friends_behind_every_nat_form_one_ring_and_ping_each_other() {
    if !common::lab_available() {
        return;
    }
    let ring = start(1);
    let last_login = ring.all_online();
    let Some(_) = ring.wait_consistent(Duration::from_secs(30)) else {
        panic!("ring not consistent within 30 s:\n{}", ring.dump());
    };
    let after_login = unix_ms().saturating_sub(last_login);
    eprintln!("ring consistent {after_login} ms after the last login");
    for a in 0..ring.names.len() {
        for b in 0..ring.names.len() {
            if a != b {
                match ring.ping(a, b) {
                    Ok(t) => eprint!("{} -> {}: {t}", ring.names[a], ring.names[b]),
                    Err(e) => panic!(
                        "{} -> {} failed: {e}\n{}",
                        ring.names[a],
                        ring.names[b],
                        ring.dump()
                    ),
                }
            }
        }
    }
    eprintln!("{}", ring.dump());
}
