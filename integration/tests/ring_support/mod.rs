//! Real `chamber` nodes in a lab ring (included by the ring lab tests): friends behind every
//! kind of NAT with accounts split across the federation, and the checks those tests make —
//! consistency (every node's nearest left and right peers are the true ring neighbours), pings
//! over the ring, link kinds against NATLAB.md.
#![allow(dead_code)]

use super::node_support;

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

pub struct Ring {
    pub lab: Lab,
    pub homes: Vec<NodeHome>,
    pub daemons: Vec<Daemon>,
    pub names: Vec<String>,
    /// Nodes running now (indices into `homes`).
    pub alive: Vec<usize>,
}

/// `per_kind` sites of each NAT kind, one node each, plus `late` port-restricted sites whose
/// nodes are not started yet. Nodes alternate between Prosody and ejabberd accounts, except
/// that UDP-blocked sites use Prosody (whose TURN, coturn, is not the XMPP server itself).
pub fn start(per_kind: usize, late: usize) -> Ring {
    let mut names = Vec::new();
    let mut sites = Vec::new();
    for k in 0..per_kind {
        for (name, kind) in KINDS {
            names.push(format!("{name}{k}"));
            sites.push(SiteSpec::new(format!("{name}{k}"), kind));
        }
    }
    for k in 0..late {
        names.push(format!("late{k}"));
        sites.push(SiteSpec::new(
            format!("late{k}"),
            NatKind::PortRestrictedCone,
        ));
    }
    let mut spec = LabSpec::with_sites(sites);
    spec.users = names.len() as u32;
    let lab = Lab::up(spec).expect("lab up");
    let homes: Vec<NodeHome> = names.iter().map(|n| NodeHome::new(&lab, n)).collect();
    for (i, (h, n)) in homes.iter().zip(&names).enumerate() {
        let site = lab.site(n).expect("site");
        let (domain, tls) = if i % 2 == 0 || n.starts_with("blocked") {
            (ALPHA, TlsMode::StartTls)
        } else {
            (BETA, TlsMode::Direct)
        };
        h.add_account(&site.host, &lab, i as u32 + 1, domain, tls);
    }
    let daemons = homes
        .iter()
        .zip(&names)
        .take(6 * per_kind)
        .map(|(h, n)| h.up(&lab.site(n).expect("site").host))
        .collect();
    Ring {
        lab,
        homes,
        daemons,
        names,
        alive: (0..6 * per_kind).collect(),
    }
}

pub fn overlay(s: &NodeStatus) -> Option<&chamber::runtime::RingView> {
    s.rings.iter().find(|r| r.name == "lab")?.overlay.as_ref()
}

impl Ring {
    pub fn statuses(&self) -> Vec<Option<NodeStatus>> {
        self.alive.iter().map(|&i| self.homes[i].status()).collect()
    }

    /// Whether every node's nearest left and right peers are its true ring neighbours.
    pub fn consistent(statuses: &[Option<NodeStatus>]) -> bool {
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

    pub fn wait_consistent(&self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if Self::consistent(&self.statuses()) {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (s, &i) in self.statuses().iter().zip(&self.alive) {
            let (d, n) = (&self.daemons[i], &self.names[i]);
            out += &format!("=== {n}\n");
            match s {
                Some(s) => out += &s.to_string(),
                None => out += "no status\n",
            }
            if std::env::var_os("CHAMBER_RING_DEBUG").is_some() {
                out += &std::fs::read_to_string(d.log()).unwrap_or_default();
            } else {
                out += &d.tail(15);
            }
        }
        out
    }

    pub fn all_online(&self) -> u64 {
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

    pub fn ping(&self, from: usize, to: usize) -> Result<String, String> {
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

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

impl Ring {
    /// Pings every ordered pair of running nodes; each pair gets `tries` attempts.
    pub fn ping_all(&self, tries: usize) -> Vec<String> {
        let mut failed = Vec::new();
        for &a in &self.alive {
            for &b in &self.alive {
                if a == b {
                    continue;
                }
                let mut last = String::new();
                let ok = (0..tries).any(|_| match self.ping(a, b) {
                    Ok(_) => true,
                    Err(e) => {
                        last = e;
                        false
                    }
                });
                if !ok {
                    failed.push(format!("{} -> {}: {last}", self.names[a], self.names[b]));
                }
            }
        }
        failed
    }

    pub fn start_node(&mut self, i: usize) {
        let ns = &self.lab.site(&self.names[i]).expect("site").host;
        self.daemons.push(self.homes[i].up(ns));
        self.alive.push(i);
    }
}

/// The NAT kind of a lab site, from its name (`KINDS` names plus a number, or `late`).
pub fn kind_of(name: &str) -> NatKind {
    KINDS
        .iter()
        .find(|(n, _)| name.trim_end_matches(char::is_numeric) == *n)
        .map_or(NatKind::PortRestrictedCone, |(_, k)| *k)
}

impl Ring {
    /// Every ring link whose kind contradicts NATLAB.md: direct where the pair cannot punch,
    /// TURN or a two-hop relay where it can. Returns (description, ok) per link seen.
    pub fn link_kinds(&self) -> Vec<(String, bool)> {
        let statuses = self.statuses();
        let addr_of: Vec<Option<String>> = statuses
            .iter()
            .map(|s| Some(overlay(s.as_ref()?)?.address.clone()))
            .collect();
        let mut out = Vec::new();
        for (s, &i) in statuses.iter().zip(&self.alive) {
            let Some(view) = s.as_ref().and_then(overlay) else {
                continue;
            };
            for p in &view.peers {
                let Some(k) = addr_of.iter().position(|a| a.as_ref() == Some(&p.address)) else {
                    continue;
                };
                let j = self.alive[k];
                let (a, b) = (&self.names[i], &self.names[j]);
                let punch = kind_of(a).can_punch(kind_of(b));
                let (kind, ok) = match (&p.link, &p.relay_via) {
                    (Some(l), _) if l.kind == "turn" => ("turn".to_string(), !punch),
                    (Some(l), _) if l.kind == "connecting" => (l.kind.clone(), true),
                    (Some(l), _) => (l.kind.clone(), punch),
                    (None, Some(_)) => ("relay".to_string(), !punch),
                    (None, None) => continue,
                };
                let expect = if punch { "direct" } else { "TURN or relay" };
                out.push((format!("{a} -> {b}: {kind} (NATLAB: {expect})"), ok));
            }
        }
        out
    }
}
