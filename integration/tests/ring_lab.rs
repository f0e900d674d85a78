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
    /// Nodes running now (indices into `homes`).
    alive: Vec<usize>,
}

/// `per_kind` sites of each NAT kind, one node each, plus `late` port-restricted sites whose
/// nodes are not started yet. Nodes alternate between Prosody and ejabberd accounts, except
/// that UDP-blocked sites use Prosody (whose TURN, coturn, is not the XMPP server itself).
fn start(per_kind: usize, late: usize) -> Ring {
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

fn overlay(s: &NodeStatus) -> Option<&chamber::runtime::RingView> {
    s.rings.iter().find(|r| r.name == "lab")?.overlay.as_ref()
}

impl Ring {
    fn statuses(&self) -> Vec<Option<NodeStatus>> {
        self.alive.iter().map(|&i| self.homes[i].status()).collect()
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
        for (s, &i) in self.statuses().iter().zip(&self.alive) {
            let (d, n) = (&self.daemons[i], &self.names[i]);
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

impl Ring {
    /// Pings every ordered pair of running nodes; each pair gets `tries` attempts.
    fn ping_all(&self, tries: usize) -> Vec<String> {
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

    fn start_node(&mut self, i: usize) {
        let ns = &self.lab.site(&self.names[i]).expect("site").host;
        self.daemons.push(self.homes[i].up(ns));
        self.alive.push(i);
    }
}

#[test]
fn friends_behind_every_nat_form_one_ring_that_survives_a_kill_and_the_servers() {
    if !common::lab_available() {
        return;
    }
    let mut ring = start(1, 1);
    let last_login = ring.all_online();
    let Some(_) = ring.wait_consistent(Duration::from_secs(30)) else {
        panic!("ring not consistent within 30 s:\n{}", ring.dump());
    };
    let after_login = unix_ms().saturating_sub(last_login);
    eprintln!("ring of 6 consistent {after_login} ms after the last login");
    let failed = ring.ping_all(1);
    assert!(
        failed.is_empty(),
        "pings failed: {failed:#?}\n{}",
        ring.dump()
    );
    eprintln!("all 30 ordered pairs pinged over the ring");

    // SIGKILL the full-cone node: the five others close the gap.
    let victim = ring.names.iter().position(|n| n == "full0").expect("full0");
    ring.daemons[victim].kill();
    ring.alive.retain(|&i| i != victim);
    let Some(repair) = ring.wait_consistent(Duration::from_secs(30)) else {
        panic!(
            "ring not consistent within 30 s of a kill:\n{}",
            ring.dump()
        );
    };
    eprintln!(
        "ring consistent again {} ms after SIGKILL",
        repair.as_millis()
    );

    // Both XMPP servers down: the ring carries on by itself.
    ring.lab.stop_server("Prosody");
    ring.lab.stop_server("ejabberd");
    let t = Instant::now();
    let failed = ring.ping_all(3);
    assert!(
        failed.is_empty(),
        "pings failed with the servers down: {failed:#?}\n{}",
        ring.dump()
    );
    eprintln!(
        "all 20 ordered pairs pinged with both XMPP servers down ({} ms)",
        t.elapsed().as_millis()
    );

    // Servers back: a new friend joins.
    ring.lab.start_server("Prosody").expect("Prosody back");
    ring.lab.start_server("ejabberd").expect("ejabberd back");
    let late = ring.names.iter().position(|n| n == "late0").expect("late0");
    ring.start_node(late);
    let Some(join) = ring.wait_consistent(Duration::from_secs(60)) else {
        panic!("the new friend did not join within 60 s:\n{}", ring.dump());
    };
    eprintln!(
        "new friend in a consistent ring {} ms after its start",
        join.as_millis()
    );
    let failed = ring.ping_all(2);
    assert!(
        failed.is_empty(),
        "pings failed after the join: {failed:#?}\n{}",
        ring.dump()
    );
    eprintln!("{}", ring.dump());
}
