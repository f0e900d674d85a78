//! The NAT matrix over one lab server (included with `#[path]` by `link_nat_matrix_*.rs`): for
//! every pair of site kinds in NATLAB.md, two friends link. Pairs NATLAB marks OK must end
//! direct; FAIL pairs must end on TURN when the server offers it (UDP-blocked sites reach it
//! over TCP), and report "no direct path" when TURN is withheld. With
//! `CHAMBER_WRITE_NAT_MATRIX=1` the run rewrites its server's section of `docs/nat-matrix.md`.
//! `CHAMBER_NAT_PAIRS=none-port,port-port` runs only those pairs (for debugging).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{PathHint, PathInfo, PathKind};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Lab, LabSpec, NatKind, Site};
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::FullJid;

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;

use link_common::{Friend, Outcome, Paths, Turn};

/// The server a matrix runs over.
pub struct Server {
    /// Its XMPP domain.
    pub domain: &'static str,
    /// How the matrix names it.
    pub label: &'static str,
    /// The key of its section in `docs/nat-matrix.md`.
    pub key: &'static str,
}

/// How many pairs link at once while TURN is offered (see where it is used).
const PAIRS_AT_ONCE: usize = 7;

enum Cmd {
    Connect(FullJid, oneshot::Sender<Outcome>),
    Paths(oneshot::Sender<Vec<(String, PathInfo)>>),
    Stop,
}

/// One friend per site, on its own thread in the site's namespace.
struct Node {
    jid: FullJid,
    cmds: mpsc::UnboundedSender<Cmd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn start_node(lab: &Lab, site: &Site, k: u32, domain: &'static str, turn: Turn) -> Node {
    let cfg = common::account(lab, k, domain, TlsMode::StartTls);
    let ns_path = site.host.path();
    let (jid_tx, jid_rx) = std::sync::mpsc::channel();
    let (cmds, mut cmd_rx) = mpsc::unbounded_channel::<Cmd>();
    let seed = k as u8;
    let thread = std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns_path).expect("open the site namespace");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the site");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async move {
            let s = link_common::secret(seed);
            let lc = link_common::lab_linker(PathHint::Unknown);
            let mut f: Friend = link_common::start(cfg, &s, &s, turn, lc).await;
            jid_tx.send(f.jid.clone()).expect("report jid");
            let paths: Paths = Arc::default();
            let mut echoes = Vec::new();
            let mut kept = Vec::new();
            loop {
                tokio::select! {
                    c = cmd_rx.recv() => match c {
                        // Every pair at once: a node may start several links.
                        Some(Cmd::Connect(peer, reply)) => {
                            let linker = f.linker.clone();
                            kept.push(tokio::spawn(async move {
                                let (o, link) = link_common::ping_over(linker, peer).await;
                                let _ = reply.send(o);
                                link
                            }));
                        }
                        Some(Cmd::Paths(reply)) => {
                            let p = paths.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = reply.send(p.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
                        }
                        Some(Cmd::Stop) | None => break,
                    },
                    Some(r) = f.incoming.recv() => {
                        if let Ok((_, link)) = r {
                            echoes.push(link_common::echo_reporting(link, Some(paths.clone())));
                        }
                    }
                }
            }
            for l in kept {
                if let Ok(Some(l)) = l.await {
                    l.close().await;
                }
            }
            f.account.close(Duration::from_secs(2)).await;
        })
    });
    let jid = jid_rx
        .recv_timeout(Duration::from_secs(40))
        .expect("friend online");
    Node {
        jid,
        cmds,
        thread: Some(thread),
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One pair's result: the initiator's outcome and the path the responder saw.
struct Cell {
    outcome: Outcome,
    responder: Option<PathInfo>,
}

impl Cell {
    fn text(&self) -> String {
        match &self.outcome.result {
            Ok(p) => {
                let tcp = p.over_tcp || self.responder.as_ref().is_some_and(|r| r.over_tcp);
                let kind = match p.kind {
                    PathKind::DirectHost => "direct (host)",
                    PathKind::DirectServerReflexive => "direct (srflx)",
                    PathKind::PeerReflexive => "direct (prflx)",
                    PathKind::TurnRelay if tcp => "TURN, TCP leg",
                    PathKind::TurnRelay => "TURN",
                };
                format!("{kind} ({} ms)", self.outcome.setup.as_millis())
            }
            Err(e) => e.clone(),
        }
    }

    /// Whether the cell is what NATLAB.md and the issue ask for.
    fn ok(&self, a: NatKind, b: NatKind, turn: Turn) -> bool {
        let resp_kind = self.responder.as_ref().map(|p| p.kind);
        match (&self.outcome.result, a.can_punch(b), turn) {
            (Ok(p), true, _) => {
                p.kind.is_direct()
                    && resp_kind.is_some_and(|k| k.is_direct())
                    && self.outcome.echoed
            }
            (Ok(p), false, Turn::Offered) => {
                p.kind == PathKind::TurnRelay
                    && resp_kind == Some(PathKind::TurnRelay)
                    && self.outcome.echoed
            }
            (Err(e), false, Turn::Withheld) => e == "no direct path",
            _ => false,
        }
    }
}

fn site_of(lab: &Lab, k: NatKind, n: usize) -> (usize, &Site) {
    let name = format!("{k}-{n}");
    let i = lab
        .sites()
        .iter()
        .position(|s| s.spec.name == name)
        .expect("site");
    (i, &lab.sites()[i])
}

/// Runs the matrix over `server` and checks it.
pub fn run(server: Server) {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let only: Option<Vec<String>> = std::env::var("CHAMBER_NAT_PAIRS")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let mut spec = LabSpec::each_kind(2);
    spec.prosody = server.domain == ALPHA;
    spec.ejabberd = !spec.prosody;
    spec.coturn = spec.prosody;
    let lab = Lab::up(spec).expect("lab up");
    eprintln!("lab up in {:?}", started.elapsed());
    let mut pairs = Vec::new();
    for (i, a) in NatKind::ALL.iter().enumerate() {
        for b in &NatKind::ALL[i..] {
            let name = format!("{a}-{b}");
            if only.as_ref().is_none_or(|o| o.contains(&name)) {
                pairs.push((*a, *b));
            }
        }
    }
    let mut results: BTreeMap<(bool, usize, usize), Cell> = BTreeMap::new();
    for turn in [Turn::Offered, Turn::Withheld] {
        let phase = Instant::now();
        let here: Vec<(NatKind, NatKind)> = pairs
            .iter()
            .copied()
            .filter(|(a, b)| turn == Turn::Offered || !a.can_punch(*b))
            .collect();
        if here.is_empty() {
            continue;
        }
        // One node per site used; user k = site index + 1. Logins run in parallel.
        let mut wanted = Vec::new();
        for (a, b) in &here {
            for (k, n) in [(*a, 1), (*b, 2)] {
                let (i, site) = site_of(&lab, k, n);
                if !wanted
                    .iter()
                    .any(|(_, s): &(usize, &Site)| s.spec.name == site.spec.name)
                {
                    wanted.push((i, site));
                }
            }
        }
        let nodes: BTreeMap<String, Node> = std::thread::scope(|s| {
            let handles: Vec<_> = wanted
                .iter()
                .map(|(i, site)| {
                    let lab = &lab;
                    s.spawn(move || {
                        let node = start_node(lab, site, *i as u32 + 1, server.domain, turn);
                        (site.spec.name.clone(), node)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("node started"))
                .collect()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // A few pairs at a time: each pair runs two ICE agents, and a debug build on a small
        // machine checking dozens at once can punch slower than the relay wait, which makes
        // an OK pair end on TURN for want of CPU, not for its NATs. Without TURN no pair can
        // end anywhere but "no direct path", and each waits out ICE's timeout: all at once.
        let at_once = match turn {
            Turn::Offered => PAIRS_AT_ONCE,
            Turn::Withheld => here.len(),
        };
        let mut outcomes = Vec::new();
        for chunk in here.chunks(at_once) {
            let mut waits = Vec::new();
            for (a, b) in chunk {
                let sa = &site_of(&lab, *a, 1).1.spec.name;
                let sb = &site_of(&lab, *b, 2).1.spec.name;
                let (tx, rx) = oneshot::channel();
                nodes[sa]
                    .cmds
                    .send(Cmd::Connect(nodes[sb].jid.clone(), tx))
                    .expect("node alive");
                waits.push(((*a, *b), rx));
            }
            for ((a, b), rx) in waits {
                let o = rt
                    .block_on(async { tokio::time::timeout(Duration::from_secs(60), rx).await })
                    .expect("an outcome within 60 s")
                    .expect("node answered");
                outcomes.push(((a, b), o));
            }
        }
        for ((a, b), outcome) in outcomes {
            let initiator = nodes[&site_of(&lab, a, 1).1.spec.name].jid.to_string();
            let (tx, rx) = oneshot::channel();
            nodes[&site_of(&lab, b, 2).1.spec.name]
                .cmds
                .send(Cmd::Paths(tx))
                .expect("node alive");
            let responder = rt
                .block_on(rx)
                .expect("paths")
                .into_iter()
                .find(|(peer, _)| *peer == initiator)
                .map(|(_, p)| p);
            let cell = Cell { outcome, responder };
            let label = if turn == Turn::Offered {
                server.label
            } else {
                "no TURN"
            };
            eprintln!(
                "[{label}] {a} ↔ {b}: {} echoed={} responder={:?}",
                cell.text(),
                cell.outcome.echoed,
                cell.responder.as_ref().map(|p| p.kind)
            );
            results.insert((turn == Turn::Withheld, idx(a), idx(b)), cell);
        }
        drop(nodes);
        eprintln!("{turn:?}: {} pairs in {:?}", here.len(), phase.elapsed());
    }
    eprintln!(
        "matrix over {} done in {:?}",
        server.label,
        started.elapsed()
    );
    let mut failures = Vec::new();
    for ((withheld, ia, ib), cell) in &results {
        let (a, b) = (NatKind::ALL[*ia], NatKind::ALL[*ib]);
        let turn = if *withheld {
            Turn::Withheld
        } else {
            Turn::Offered
        };
        if !cell.ok(a, b, turn) {
            failures.push(format!("[{turn:?}] {a} ↔ {b}: {}", cell.text()));
        }
    }
    if std::env::var("CHAMBER_WRITE_NAT_MATRIX").is_ok_and(|v| v == "1") && only.is_none() {
        write_section(&server, &results);
    }
    assert!(
        failures.is_empty(),
        "unexpected outcomes over {}:\n{}",
        server.label,
        failures.join("\n")
    );
}

fn idx(k: NatKind) -> usize {
    NatKind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}

const HEADER: &str = "# NAT matrix\n\nWritten by `integration/tests/link_nat_matrix_prosody.rs` \
and `link_nat_matrix_ejabberd.rs` (`CHAMBER_WRITE_NAT_MATRIX=1`, each rewrites its own \
server's section) from their own runs: two friends behind each pair of lab NATs open a chamber \
link (Jingle over XMPP, webrtc-ice, Noise IK) and echo a datagram. Each cell is the path the \
link ended on and the setup time (offer → first authenticated datagram, debug build, seven \
pairs at a time; without TURN all at once). \"TCP leg\": a UDP-blocked end reaches the TURN server over TCP. \
NATLAB.md's expectation is in brackets: OK pairs must be direct, FAIL pairs on TURN when \
the server offers it, and \"no direct path\" when TURN is withheld.\n";

fn table(title: &str, results: &BTreeMap<(bool, usize, usize), Cell>, withheld: bool) -> String {
    let mut md = format!("\n### {title}\n\n| | ");
    md.push_str(
        &NatKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    md.push_str(" |\n|---|");
    md.push_str(&"---|".repeat(NatKind::ALL.len()));
    md.push('\n');
    for a in NatKind::ALL {
        md.push_str(&format!("| **{a}** |"));
        for b in NatKind::ALL {
            let key = (withheld, idx(a).min(idx(b)), idx(a).max(idx(b)));
            let expect = if a.can_punch(b) { "OK" } else { "FAIL" };
            match results.get(&key) {
                Some(c) => md.push_str(&format!(" {} [{expect}] |", c.text())),
                None => md.push_str(" |"),
            }
        }
        md.push('\n');
    }
    md
}

fn write_section(server: &Server, results: &BTreeMap<(bool, usize, usize), Cell>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/nat-matrix.md");
    let (begin, end) = (
        format!("<!-- {}:begin -->", server.key),
        format!("<!-- {}:end -->", server.key),
    );
    let mut section = format!("{begin}\n## {} ({})\n", server.label, server.domain);
    section.push_str(&table("TURN offered", results, false));
    section.push_str(&table("TURN withheld", results, true));
    section.push_str(&end);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut md = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &old[..b], &old[e + end.len()..])
        }
        _ if old.contains("<!-- ") => format!("{}\n{section}\n", old.trim_end()),
        _ => format!("{HEADER}\n{section}\n"),
    };
    if !md.starts_with("# NAT matrix") {
        md = format!("{HEADER}\n{md}");
    }
    std::fs::write(&path, md).expect("write docs/nat-matrix.md");
    eprintln!("wrote the {} section of {}", server.key, path.display());
}
