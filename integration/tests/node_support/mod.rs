//! The lab tests' view of `chamber_lab::node` (real `chamber` nodes in lab sites): the same homes
//! and daemons in ring `lab`, with set-up failures turned into test panics.
//!
//! Cargo sets `CARGO_BIN_EXE_<name>` only for binaries of the package under test, and `chamber`
//! is a dev-dependency here, so the binary is built once per test process with the same cargo
//! (`$CARGO`) and target folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use chamber::account::TlsMode;
use chamber::config::Config;
use chamber::node::NodeStatus;
#[allow(unused_imports)] // not every test binary names the servers
pub use chamber_lab::node::server_addr;
pub use chamber_lab::node::{self, Daemon};
use chamber_lab::{Lab, Netns};

/// The lab ring's secret (a test value; real rings get theirs from invites).
pub const RING_HEX: &str = "6c61622072696e6720736563726574206f66206368616d626572206c61622121";

/// The `chamber` binary, built on first use with the test's own profile (`--release` when the
/// test is a release build), so it lands in the test's `target/<profile>/`.
pub fn chamber_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>/chamber
        let profile_dir = exe.parent().and_then(Path::parent).expect("target folder");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let started = Instant::now();
        let mut build = Command::new(cargo);
        build
            .current_dir(root)
            .args(["build", "--quiet", "-p", "chamber", "--bin", "chamber"]);
        // A release test (`cargo test --release`, the benchmarks) runs a release daemon.
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the chamber binary");
        assert!(status.success(), "cargo build -p chamber failed");
        eprintln!(
            "chamber binary ready in {} ms",
            started.elapsed().as_millis()
        );
        profile_dir.join("chamber")
    })
}

/// An app from `examples/` (`chat`, `fileshare`, `vpn`), built like [`chamber_bin`] and
/// found in `target/<profile>/examples/`.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(root)
        .args(["build", "--quiet", "-p", "chamber", "--example", name]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build for an example");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}

/// One node's home folder in ring `lab` (see [`chamber_lab::node::NodeHome`]).
pub struct NodeHome(node::NodeHome);

impl std::ops::Deref for NodeHome {
    type Target = node::NodeHome;
    fn deref(&self) -> &node::NodeHome {
        &self.0
    }
}

impl NodeHome {
    /// A fresh home for node `name`, in ring `lab`, with secrets in a file store.
    pub fn new(lab: &Lab, name: &str) -> NodeHome {
        chamber_bin();
        NodeHome(node::NodeHome::new(lab, name, "lab", RING_HEX).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Sets `[timing]` in the node's configuration (before `up`).
    pub fn set_timing(&self, timing: chamber::config::Timing) {
        let mut c = Config::load(&self.config).expect("config");
        c.timing = timing;
        c.save(&self.config).expect("write config");
    }

    /// Replaces the node's rings with `rings` (name, secret as 64 hex digits in a 0600 file),
    /// before `up`.
    pub fn set_rings(&self, rings: &[(&str, &str)]) {
        use std::os::unix::fs::PermissionsExt;
        let mut c = Config::load(&self.config).expect("config");
        c.rings = rings
            .iter()
            .map(|(name, hex)| {
                let path = self.dir.join(format!("ring-{name}.hex"));
                std::fs::write(&path, hex).expect("write ring secret");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod ring secret");
                chamber::config::RingEntry {
                    name: (*name).into(),
                    secret: chamber::config::SecretRef::File(path),
                    owner: None,
                    cert: None,
                    friends: None,
                }
            })
            .collect();
        c.save(&self.config).expect("write config");
    }

    /// Runs `chamber ARGS` in `ns` with `stdin`, returning its output whatever its status.
    pub fn run(&self, ns: &Netns, args: &[&str], stdin: &str) -> Output {
        self.0
            .output(ns, args, stdin)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `chamber account add` for lab account `userK@domain` (password on stdin), checked.
    pub fn add_account(&self, ns: &Netns, lab: &Lab, k: u32, domain: &str, tls: TlsMode) {
        self.0
            .add_account(ns, lab, k, domain, tls)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts `chamber up` in `ns`, with rendezvous debug lines in its log (or the filter in
    /// `CHAMBER_LAB_LOG`).
    pub fn up(&self, ns: &Netns) -> Daemon {
        self.0
            .up_logging(
                ns,
                &std::env::var("CHAMBER_LAB_LOG").unwrap_or_else(|_| {
                    "info,chamber::rendezvous=debug,webrtc_ice=error,turn=error".into()
                }),
            )
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The full JIDs other nodes are bound to right now.
pub fn bound_jids(s: &NodeStatus) -> Vec<String> {
    s.accounts
        .iter()
        .filter_map(|a| a.bound_jid.clone())
        .collect()
}

/// The full JIDs a node sees up in ring `lab`.
pub fn seen(s: &NodeStatus) -> Vec<String> {
    s.rings
        .iter()
        .filter(|r| r.name == "lab")
        .flat_map(|r| r.friends.iter().map(|f| f.friend.jid.clone()))
        .collect()
}

/// The overlay view of ring `lab` in `s`.
pub fn lab_ring(s: &NodeStatus) -> Option<&chamber::runtime::RingView> {
    s.rings.iter().find(|r| r.name == "lab")?.overlay.as_ref()
}

/// Whether `s` has a link (not a relay) in ring `lab` to ring address `addr`.
pub fn linked(s: &NodeStatus, addr: &str) -> bool {
    lab_ring(s).is_some_and(|v| {
        v.peers
            .iter()
            .any(|p| p.address == addr && p.link.is_some())
    })
}

/// The node's status once all its accounts are online and ring `lab` runs.
pub fn online(h: &NodeHome, d: &Daemon) -> NodeStatus {
    h.wait_status(std::time::Duration::from_secs(20), |s| {
        s.accounts.iter().all(|a| a.online_since_ms.is_some()) && lab_ring(s).is_some()
    })
    .unwrap_or_else(|| panic!("node not online:\n{}", d.tail(30)))
}

/// The secret of ring `lab` as the home keeps it (the tests play members who know it).
pub fn lab_secret(h: &NodeHome) -> xmpp_ext::RingSecret {
    let text = std::fs::read_to_string(h.dir.join("ring.hex")).expect("the ring secret");
    let bytes: [u8; 32] = hex::decode(text.trim())
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    xmpp_ext::RingSecret::from_bytes(bytes)
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
