//! Network namespaces: the lab's hosts. A namespace is created with `ip netns add`, so that
//! `ip netns exec` (which also bind-mounts `/etc/netns/<name>/hosts`) reaches it, and every
//! namespace the lab makes carries the lab's prefix so that cleanup never touches anything else.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

use crate::cmd;
use crate::error::{LabError, Result};

/// The prefix of every namespace a lab creates: `chl<owner pid>x<lab number>-<role>`.
pub const PREFIX: &str = "chl";

/// A network namespace owned by the lab; deleted (with every process in it) by [`Netns::delete`].
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace, brings `lo` up and sets the sysctls every lab host needs.
    pub fn create(name: &str, forward: bool) -> Result<Netns> {
        cmd::run("ip", ["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.exec("ip", ["link", "set", "dev", "lo", "up"])?;
        ns.sysctl("net.ipv4.ip_forward", if forward { "1" } else { "0" })?;
        // Namespaces inherit rp_filter; asymmetric NAT paths need it off.
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
        ns.sysctl("net.ipv4.conf.default.rp_filter", "0")?;
        // No IPv6 in the lab: it would add candidates that lead nowhere.
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace and returns its stdout.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        cmd::run_in(&self.name, program, args)
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", ["-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Loads an nftables ruleset inside the namespace.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        cmd::run_with_input(
            "ip",
            ["netns", "exec", &self.name, "nft", "-f", "-"],
            Some(ruleset),
        )
        .map(drop)
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace, so every socket it (and any thread
    /// or runtime it starts) creates lives in the namespace.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let fd = File::open(self.path())
            .map_err(LabError::io(format!("open namespace {}", self.name)))?;
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || -> Result<T> {
                setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Io {
                    context: format!("enter namespace {name}"),
                    source: e.into(),
                })?;
                Ok(f())
            })
            .map_err(LabError::io("spawn a namespace thread"))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Process ids of everything running in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids(&self.name)
    }

    /// Where the namespace's file lives.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Kills every process in the namespace and deletes it with its `/etc/netns` files.
    pub fn delete(&self) {
        delete(&self.name);
    }
}

/// Process ids running in namespace `name`.
pub fn pids(name: &str) -> Vec<i32> {
    cmd::run("ip", ["netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills everything in namespace `name`, then deletes it and its `/etc/netns/<name>` folder.
pub fn delete(name: &str) {
    for round in 0..50 {
        let pids = pids(name);
        if pids.is_empty() {
            break;
        }
        let signal = if round < 10 {
            nix::sys::signal::SIGTERM
        } else {
            nix::sys::signal::SIGKILL
        };
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Err(e) = cmd::run("ip", ["netns", "del", name]) {
        tracing::warn!(%e, "could not delete namespace {name}");
    }
    let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(name));
}

/// Every namespace on the machine that carries the lab prefix.
pub fn lab_namespaces() -> Vec<String> {
    cmd::run("ip", ["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// The pid of the process that created a lab namespace, read from its name.
pub fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?.split('x').next()?.parse().ok()
}

/// Lab namespaces whose creating process no longer runs.
pub fn stale_namespaces() -> Vec<String> {
    lab_namespaces()
        .into_iter()
        .filter(|n| match owner_pid(n) {
            Some(pid) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
            None => true,
        })
        .collect()
}
