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
    /// The site each node runs in (its own site in the NAT lab, one shared site on loopback).
    pub sites: Vec<String>,
    /// Nodes running now (indices into `homes`).
    pub alive: Vec<usize>,
}

/// `per_kind` sites of each NAT kind, one node each, plus `late` port-restricted sites whose
/// nodes are not started yet. Nodes alternate between Prosody and ejabberd accounts, except
/// that UDP-blocked sites use Prosody (whose TURN, coturn, is not the XMPP server itself).
pub fn start(per_kind: usize, late: usize) -> Ring {
    start_with(per_kind, late, true)
}

/// [`start`], with every account on Prosody unless `split`.
pub fn start_with(per_kind: usize, late: usize, split: bool) -> Ring {
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
        let (domain, tls) = if i % 2 == 0 || n.starts_with("blocked") || !split {
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
        sites: names.clone(),
        names,
        alive: (0..6 * per_kind).collect(),
    }
}

/// The loopback lab: `n` nodes (`n0`, `n1`, …) in ONE public site (no NAT) sharing its host
/// namespace, each with its own home folder and control socket; with `split` accounts alternate
/// between Prosody and ejabberd, otherwise all are on Prosody. The lab has `extra_users` more
/// accounts (`user{n+1}`…) for nodes the caller starts itself.
pub fn start_loopback(n: usize, extra_users: u32, split: bool) -> Ring {
    let mut spec = LabSpec::with_sites(vec![SiteSpec::new(LOOPBACK_SITE, NatKind::None)]);
    spec.users = n as u32 + extra_users;
    let lab = Lab::up(spec).expect("lab up");
    let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
    let host = &lab.site(LOOPBACK_SITE).expect("site").host;
    let homes: Vec<NodeHome> = names.iter().map(|n| NodeHome::new(&lab, n)).collect();
    for (i, h) in homes.iter().enumerate() {
        let (domain, tls) = if i % 2 == 0 || !split {
            (ALPHA, TlsMode::StartTls)
        } else {
            (BETA, TlsMode::Direct)
        };
        h.add_account(host, &lab, i as u32 + 1, domain, tls);
    }
    let daemons = homes.iter().map(|h| h.up(host)).collect();
    Ring {
        lab,
        homes,
        daemons,
        sites: vec![LOOPBACK_SITE.to_string(); n],
        names,
        alive: (0..n).collect(),
    }
}

/// The one site of [`start_loopback`].
pub const LOOPBACK_SITE: &str = "loop";

pub fn overlay(s: &NodeStatus) -> Option<&chamber::runtime::RingView> {
    s.rings.iter().find(|r| r.name == "lab")?.overlay.as_ref()
}

impl Ring {
    /// `chamber ARGS` on node `i`, which must succeed; its output.
    pub fn run_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.homes[i].run(self.host(i), args, "");
        assert!(
            out.status.success(),
            "n{i}: chamber {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every running node's status, asked of all of them at once (one round takes about as
    /// long as the slowest answer, so a large ring is sampled at nearly one instant).
    pub fn statuses(&self) -> Vec<Option<NodeStatus>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(futures::future::join_all(self.alive.iter().map(|&i| {
            let socket = self.homes[i].socket.clone();
            async move { chamber::node::query_status(&socket).await.ok() }
        })))
    }

    /// The site namespace node `i` runs in.
    pub fn host(&self, i: usize) -> &chamber_lab::Netns {
        &self.lab.site(&self.sites[i]).expect("site").host
    }

    /// Whether every node's nearest left and right peers are its true ring neighbours.
    pub fn consistent(statuses: &[Option<NodeStatus>]) -> bool {
        Self::correct_nodes(statuses) == Some(statuses.len())
    }

    /// How many nodes have their true ring neighbours as nearest left and right peers; `None`
    /// while some node does not answer or has no ring address yet.
    pub fn correct_nodes(statuses: &[Option<NodeStatus>]) -> Option<usize> {
        let views: Vec<_> = statuses
            .iter()
            .map(|s| s.as_ref().and_then(overlay))
            .collect::<Option<_>>()?;
        let mut addrs: Vec<Address> = views
            .iter()
            .filter_map(|v| v.address.parse().ok())
            .collect();
        if addrs.len() != views.len() {
            return None;
        }
        addrs.sort();
        let n = addrs.len();
        let correct = views.iter().filter(|v| {
            let me: Address = v.address.parse().expect("address");
            let k = addrs.iter().position(|a| *a == me).expect("listed");
            let left = addrs[(k + 1) % n].to_string();
            let right = addrs[(k + n - 1) % n].to_string();
            v.left.first() == Some(&left) && v.right.first() == Some(&right)
        });
        Some(correct.count())
    }

    pub fn wait_consistent(&self, limit: Duration) -> Option<Duration> {
        self.wait_consistent_sampled(limit, Duration::from_millis(100))
            .map(|c| c.elapsed)
    }

    /// Polls every `every` until the ring is consistent (or `limit` passes); says when, with
    /// the Unix time of the round that found it and how long that round took.
    pub fn wait_consistent_sampled(&self, limit: Duration, every: Duration) -> Option<Consistent> {
        let t = Instant::now();
        while t.elapsed() < limit {
            let round = Instant::now();
            let statuses = self.statuses();
            if Self::consistent(&statuses) {
                return Some(Consistent {
                    elapsed: t.elapsed(),
                    at_ms: unix_ms(),
                    round: round.elapsed(),
                    statuses,
                });
            }
            std::thread::sleep(every);
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
        self.all_online_within(Duration::from_secs(30))
    }

    /// Waits until node `i` sees every other node's sessions as friends in ring `lab` (an
    /// invite goes only to a friend's node it has seen).
    pub fn sees_all(&self, i: usize, limit: Duration) {
        let t = Instant::now();
        loop {
            let st = self.statuses();
            let others: Vec<String> = st
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, s)| {
                    s.as_ref()
                        .map(crate::node_support::bound_jids)
                        .unwrap_or_default()
                })
                .collect();
            let seen = st[i]
                .as_ref()
                .map(crate::node_support::seen)
                .unwrap_or_default();
            if !others.is_empty() && others.iter().all(|j| seen.contains(j)) {
                return;
            }
            assert!(
                t.elapsed() < limit,
                "n{i} did not see every friend within {limit:?}: sees {seen:?}, others {others:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node's first account is online (at most `limit`); returns
    /// the last login's Unix time (`online_since_ms`).
    pub fn all_online_within(&self, limit: Duration) -> u64 {
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
                t.elapsed() < limit,
                "not all online within {limit:?}:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn ping(&self, from: usize, to: usize) -> Result<String, String> {
        let st = self.homes[to].status().ok_or("no status")?;
        let target = overlay(&st).ok_or("no ring")?.address.clone();
        let out = self.homes[from].run(self.host(from), &["ping", "-c", "1", &target], "");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

/// When a ring was found consistent (see [`Ring::wait_consistent_sampled`]).
pub struct Consistent {
    /// Since the wait began.
    pub elapsed: Duration,
    /// Unix milliseconds at the end of the round that found it.
    pub at_ms: u64,
    /// How long that round of status queries took (the measurement's resolution, with the
    /// polling interval).
    pub round: Duration,
    /// What that round read.
    pub statuses: Vec<Option<NodeStatus>>,
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
        let daemon = self.homes[i].up(self.host(i));
        self.daemons.push(daemon);
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
