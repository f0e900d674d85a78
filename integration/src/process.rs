//! Server processes started inside a namespace: logged to a file, in their own process group,
//! stopped (group-wide, then by force) when dropped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{LabError, Result};
use crate::netns::Netns;

/// A running server.
#[derive(Debug)]
pub struct ServerProcess {
    what: &'static str,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Spawns `program args` inside `netns`, with output appended to `log`.
    pub fn spawn(
        what: &'static str,
        netns: &Netns,
        program: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<ServerProcess> {
        let out = File::create(log).map_err(LabError::io(format!("create {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(LabError::io("clone a log handle"))?;
        let mut cmd: Command = netns.command(program);
        cmd.args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(LabError::io(format!("start {what}")))?;
        tracing::debug!(what, pid = child.id(), log = %log.display(), "started");
        Ok(ServerProcess {
            what,
            child,
            log: log.to_path_buf(),
        })
    }

    /// Which server this is.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Fails with the log's tail if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(LabError::Exited {
                what: self.what,
                status: status.to_string(),
                log: self.log.clone(),
                tail: tail(&self.log, 15),
            }),
            _ => Ok(()),
        }
    }

    /// Polls `ready` every 50 ms until it holds, the process dies, or `timeout` passes.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if ready() {
                tracing::debug!(
                    what = self.what,
                    ms = start.elapsed().as_millis() as u64,
                    "ready"
                );
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::NotReady {
                    what: self.what,
                    secs: timeout.as_secs(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: SIGTERM to its launcher's whole process tree (collected first: `su`
    /// and `runuser` move the server out of the launcher's process group, and the launcher may
    /// exit long before the server has let go of its ports), then SIGKILL to whatever is left
    /// after five seconds. Returns when none of them runs.
    pub fn stop(&mut self) {
        self.end(Signal::SIGTERM);
    }

    /// Kills the server at once (SIGKILL to its whole process tree), as a crash or a power
    /// cut would: no stream is closed, clients find out from their sockets.
    pub fn crash(&mut self) {
        self.end(Signal::SIGKILL);
    }

    fn end(&mut self, first: Signal) {
        let root = self.child.id() as i32;
        let tree = process_tree(root);
        let signal_all = |sig: Signal| {
            for pid in &tree {
                let _ = kill(Pid::from_raw(*pid), sig);
            }
        };
        signal_all(first);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut killed = first == Signal::SIGKILL;
        loop {
            let _ = self.child.try_wait();
            if tree.iter().all(|p| !running(*p)) {
                break;
            }
            if Instant::now() > deadline {
                if killed {
                    break;
                }
                signal_all(Signal::SIGKILL);
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// `root` and all its descendants, from `/proc/<pid>/stat` parent links.
fn process_tree(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat_field(pid, 1)?.parse().ok()?)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Field `n` after the command name of `/proc/<pid>/stat` (0 = state, 1 = parent pid).
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(n)
        .map(str::to_string)
}

/// Whether `pid` runs (a zombie does not).
fn running(pid: i32) -> bool {
    stat_field(pid, 0).is_some_and(|state| state != "Z")
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether something inside `netns` listens on `addr:port` (`udp` or `tcp`).
pub fn listening(netns: &Netns, udp: bool, addr: &str, port: u16) -> bool {
    let flag = if udp { "-Hlnu" } else { "-Hlnt" };
    netns
        .exec("ss", [flag])
        .map(|out| {
            let wanted = [
                format!("{addr}:{port}"),
                format!("*:{port}"),
                format!("0.0.0.0:{port}"),
            ];
            out.lines()
                .any(|l| l.split_whitespace().any(|w| wanted.iter().any(|x| x == w)))
        })
        .unwrap_or(false)
}

/// Fails with [`LabError::PortInUse`] if `addr:port` is taken inside `netns`.
pub fn ensure_free(
    netns: &Netns,
    what: &'static str,
    udp: bool,
    addr: &str,
    port: u16,
) -> Result<()> {
    if listening(netns, udp, addr, port) {
        return Err(LabError::PortInUse {
            what,
            addr: format!("{}/{addr}:{port}", if udp { "udp" } else { "tcp" }),
            netns: netns.name().to_string(),
        });
    }
    Ok(())
}
