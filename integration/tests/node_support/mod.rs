//! Running the real `chamber` binary in the lab: one home folder per node (config, file
//! keystore, ring secret, control socket, log), commands run inside a site's namespace, daemons
//! stopped when dropped, status read over the control socket (a path-bound Unix socket works
//! across network namespaces).
//!
//! Cargo sets `CARGO_BIN_EXE_<name>` only for binaries of the package under test, and `chamber`
//! is a dev-dependency here, so the binary is built once per test process with the same cargo
//! (`$CARGO`) and target folder.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::config::{Config, RingEntry, SecretRef};
use chamber::keystore::{Backend, KeystoreConfig};
use chamber::node::NodeStatus;
use chamber_lab::topology::{ALPHA, EJABBERD_IP, PROSODY_IP};
use chamber_lab::{Lab, Netns};

/// The lab ring's secret (a test value; real rings get theirs from invites).
pub const RING_HEX: &str = "6c61622072696e6720736563726574206f66206368616d626572206c61622121";

/// The `chamber` binary, built on first use.
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
        let status = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--quiet", "-p", "chamber", "--bin", "chamber"])
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

/// The c2s address of a lab domain's server.
pub fn server_addr(domain: &str, tls: TlsMode) -> String {
    let ip = if domain == ALPHA {
        PROSODY_IP
    } else {
        EJABBERD_IP
    };
    let port = if tls == TlsMode::Direct { 5223 } else { 5222 };
    format!("{ip}:{port}")
}

/// One node's home folder.
pub struct NodeHome {
    /// The folder.
    pub dir: PathBuf,
    /// `config.toml` in it.
    pub config: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
}

impl NodeHome {
    /// A fresh home for node `name`, in ring `lab`, with secrets in a file store.
    pub fn new(lab: &Lab, name: &str) -> NodeHome {
        let dir = lab.dir().join("nodes").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("node folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let ring = dir.join("ring.hex");
        std::fs::write(&ring, RING_HEX).expect("ring secret");
        std::fs::set_permissions(&ring, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let home = NodeHome {
            config: dir.join("config.toml"),
            socket: dir.join("run").join("control.sock"),
            dir,
        };
        let config = Config {
            control_socket: Some(home.socket.clone()),
            keystore: KeystoreConfig {
                backend: Backend::File,
                dir: Some(home.dir.join("secrets")),
                service: None,
            },
            rings: vec![RingEntry {
                name: "lab".into(),
                secret: SecretRef::File(ring),
            }],
            ..Config::default()
        };
        config.save(&home.config).expect("write config");
        home
    }

    /// Sets `[timing]` in the node's configuration (before `up`).
    pub fn set_timing(&self, timing: chamber::config::Timing) {
        let mut c = Config::load(&self.config).expect("config");
        c.timing = timing;
        c.save(&self.config).expect("write config");
    }

    /// `chamber --config … ARGS` inside `ns`, with XDG folders pointing into the home.
    pub fn command(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut c = ns.command(chamber_bin().to_str().expect("utf-8 path"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.join("xdg-data"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env_remove("RUST_BACKTRACE");
        c
    }

    /// Runs `chamber ARGS` in `ns` with `stdin`, returning its output.
    pub fn run(&self, ns: &Netns, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(ns, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chamber");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait for chamber")
    }

    /// `chamber account add` for lab account `userK@domain` (password on stdin), checked.
    pub fn add_account(&self, ns: &Netns, lab: &Lab, k: u32, domain: &str, tls: TlsMode) {
        let a = lab.account(k, domain);
        let server = server_addr(domain, tls);
        let ca = lab.ca_file();
        let mut args = vec![
            "account",
            "add",
            &a.jid,
            "--server",
            &server,
            "--password-stdin",
        ];
        let ca_s = ca.to_string_lossy().to_string();
        args.extend(["--ca-file", &ca_s]);
        if tls == TlsMode::Direct {
            args.push("--direct-tls");
        }
        let out = self.run(ns, &args, &format!("{}\n", a.password));
        assert!(
            out.status.success(),
            "account add {} failed: {}",
            a.jid,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `chamber up` in `ns`; its log goes to `up.log` in the home.
    pub fn up(&self, ns: &Netns) -> Daemon {
        let log = self.dir.join("up.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = self
            .command(ns, &["up"])
            .env("CHAMBER_LOG", "info,chamber::rendezvous=debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start chamber up");
        Daemon {
            child: Some(child),
            log,
        }
    }

    /// The daemon's status, if it answers.
    pub fn status(&self) -> Option<NodeStatus> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(chamber::node::query_status(&self.socket)).ok()
    }

    /// Polls the status until `done` holds or `timeout` passes.
    pub fn wait_status(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&NodeStatus) -> bool,
    ) -> Option<NodeStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.status()
                && done(&s)
            {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// A running `chamber up`; killed (SIGKILL) when dropped unless stopped first.
pub struct Daemon {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
}

impl Daemon {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (a clean shutdown).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines of its log.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
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
