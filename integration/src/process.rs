//! Server processes started inside a namespace: logged to a file, in their own process group,
//! stopped (group-wide, then by force) when dropped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
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

    /// Stops the process group: SIGTERM, then SIGKILL after two seconds.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pgid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
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
