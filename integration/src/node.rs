//! Running the real `chamber` binary in the lab: one home folder per node (config, file keystore,
//! ring secret, control socket, log), commands run inside a site's namespace, daemons stopped when
//! dropped, status read over the control socket (a path-bound Unix socket works across network
//! namespaces). The demo uses it; so can tests.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::config::{Config, RingEntry, SecretRef};
use chamber::keystore::{Backend, KeystoreConfig};
use chamber::node::NodeStatus;

use crate::error::{LabError, Result};
use crate::topology::{ALPHA, EJABBERD_IP, PROSODY_IP};
use crate::{Lab, Netns};

/// The `chamber` binary beside the running executable (`target/<profile>/`), or one folder up
/// (a test binary lives in `target/<profile>/deps/`).
pub fn chamber_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(LabError::io("find the running executable"))?;
    let candidates = exe.ancestors().skip(1).take(2).map(|d| d.join("chamber"));
    candidates.clone().find(|p| p.is_file()).ok_or_else(|| {
        LabError::Spec(format!(
            "no `chamber` binary beside {} (build it with `cargo build -p chamber --bin chamber`)",
            exe.display()
        ))
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
    bin: PathBuf,
}

impl NodeHome {
    /// A fresh home for node `name` in the lab, member of ring `ring` whose secret is
    /// `secret_hex`, with its secrets in a file store inside the home.
    pub fn new(lab: &Lab, name: &str, ring: &str, secret_hex: &str) -> Result<NodeHome> {
        let dir = lab.dir().join("nodes").join(name);
        let io = |what: &str| LabError::io(format!("{what} for node {name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io("create the home"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("chmod the home"))?;
        let secret = dir.join("ring.hex");
        std::fs::write(&secret, secret_hex).map_err(io("write the ring secret"))?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod the ring secret"))?;
        let home = NodeHome {
            config: dir.join("config.toml"),
            socket: dir.join("run").join("control.sock"),
            bin: chamber_bin()?,
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
                name: ring.into(),
                secret: SecretRef::File(secret),
                owner: None,
                cert: None,
                friends: None,
            }],
            ..Config::default()
        };
        config
            .save(&home.config)
            .map_err(|e| LabError::Spec(format!("write {}: {e}", home.config.display())))?;
        Ok(home)
    }

    /// `chamber --config … ARGS` inside `ns`, with the XDG folders inside the home.
    pub fn command(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut c = ns.command(&self.bin.to_string_lossy());
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("XDG_CONFIG_HOME", self.dir.join("xdg-config"))
            .env("XDG_DATA_HOME", self.dir.join("xdg-data"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env_remove("RUST_BACKTRACE");
        c
    }

    /// Runs `chamber ARGS` in `ns` with `stdin` and returns its output, whatever its exit status.
    pub fn output(&self, ns: &Netns, args: &[&str], stdin: &str) -> Result<Output> {
        let line = format!("chamber {}", args.join(" "));
        let mut child = self
            .command(ns, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(LabError::io(format!("start `{line}`")))?;
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.as_bytes())
                .map_err(LabError::io(format!("feed `{line}`")))?;
        }
        child
            .wait_with_output()
            .map_err(LabError::io(format!("wait for `{line}`")))
    }

    /// Runs `chamber ARGS` in `ns` with `stdin`; a failure carries its stderr.
    pub fn run(&self, ns: &Netns, args: &[&str], stdin: &str) -> Result<Output> {
        let out = self.output(ns, args, stdin)?;
        if !out.status.success() {
            return Err(LabError::Command {
                command: format!("chamber {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out)
    }

    /// `chamber account add` for lab account `userK@domain`, password on stdin.
    pub fn add_account(
        &self,
        ns: &Netns,
        lab: &Lab,
        k: u32,
        domain: &str,
        tls: TlsMode,
    ) -> Result<()> {
        let a = lab.account(k, domain);
        let (server, ca) = (
            server_addr(domain, tls),
            lab.ca_file().to_string_lossy().to_string(),
        );
        let mut args = vec![
            "account",
            "add",
            &a.jid,
            "--server",
            &server,
            "--password-stdin",
            "--ca-file",
            &ca,
        ];
        if tls == TlsMode::Direct {
            args.push("--direct-tls");
        }
        self.run(ns, &args, &format!("{}\n", a.password)).map(drop)
    }

    /// Starts `chamber up` in `ns`, logging to `up.log` in the home as the daemon does by
    /// default (`info`, webrtc-ice's errors only).
    pub fn up(&self, ns: &Netns) -> Result<Daemon> {
        self.up_logging(ns, "info,webrtc_ice=error,turn=error")
    }

    /// Starts `chamber up` in `ns` with the log filter `filter` (`CHAMBER_LOG`).
    pub fn up_logging(&self, ns: &Netns, filter: &str) -> Result<Daemon> {
        let log = self.dir.join("up.log");
        let file = std::fs::File::create(&log).map_err(LabError::io("create a node log"))?;
        let err = file
            .try_clone()
            .map_err(LabError::io("clone a log handle"))?;
        let child = self
            .command(ns, &["up"])
            .env("CHAMBER_LOG", filter)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(LabError::io("start chamber up"))?;
        Ok(Daemon {
            child: Some(child),
            log,
        })
    }

    /// The daemon's status, if it answers.
    pub fn status(&self) -> Option<NodeStatus> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
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
            if let Some(s) = self.status().filter(|s| done(s)) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// A running `chamber up`: stopped cleanly (SIGTERM) when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
}

impl Daemon {
    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to ten seconds (a clean shutdown closes the XMPP streams).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGTERM,
            );
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

    /// The last `n` lines of its log.
    pub fn tail(&self, n: usize) -> String {
        crate::process::tail(&self.log, n)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}
