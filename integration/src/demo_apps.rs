//! The demo's last act: apps on the ring the friends formed. Every friend joins a chat room
//! and says hello (what one of them saw is printed), then the friend behind the symmetric NAT
//! shares a file and another friend fetches it over the ring, SHA-256 checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chamber_lab::node::{Daemon, NodeHome};
use chamber_lab::{Lab, NatKind};

/// The chat room of the demo.
const ROOM: &str = "lab-friends";
/// Size of the shared file.
const FILE_BYTES: usize = 8 * 1024 * 1024;

/// An app from `examples/`, built by `scripts/demo.sh` beside the `chamber` binary.
fn app(name: &str) -> anyhow::Result<PathBuf> {
    let chamber = chamber_lab::node::chamber_bin()?;
    let p = chamber
        .parent()
        .context("the chamber binary has no folder")?
        .join("examples")
        .join(name);
    anyhow::ensure!(
        p.exists(),
        "{} is not built; run `cargo build -p chamber --example {name}`",
        p.display()
    );
    Ok(p)
}

fn socket(home: &NodeHome) -> String {
    chamber::services::app_socket::socket_path(&home.socket)
        .to_string_lossy()
        .into_owned()
}

/// Runs the chat and the file share between the demo's friends.
pub(super) fn run(lab: &Lab, homes: &[(String, NodeHome, Daemon)]) -> anyhow::Result<()> {
    chat(lab, homes)?;
    share(lab, homes)
}

fn chat(lab: &Lab, homes: &[(String, NodeHome, Daemon)]) -> anyhow::Result<()> {
    let bin = app("chat")?;
    let mut chats: Vec<(String, Child)> = Vec::new();
    for (site, home, _) in homes {
        let ns = &lab.site(site).context("site")?.host;
        let child = ns
            .command(&bin.to_string_lossy())
            .args([ROOM, "--nick", site, "--socket", &socket(home)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start the chat at {site}"))?;
        chats.push((site.clone(), child));
    }
    // Everyone is in the room before anyone speaks.
    std::thread::sleep(Duration::from_secs(4));
    for (site, child) in &mut chats {
        if let Some(stdin) = child.stdin.as_mut() {
            let nat = lab
                .site(site)
                .map_or_else(String::new, |s| format!("{:?}", s.spec.nat));
            writeln!(stdin, "hello from {site} (behind {nat})")?;
        }
    }
    std::thread::sleep(Duration::from_secs(4));
    let mut shown = false;
    for (site, mut child) in chats {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "/quit");
        }
        let out = wait_output(child, Duration::from_secs(10))?;
        if !shown {
            println!("── friend at `{site}`: chat {ROOM} (every friend said hello)");
            println!("{out}");
            shown = true;
        }
    }
    Ok(())
}

/// Waits for a child to end (killing it after `limit`) and returns its stdout.
fn wait_output(mut child: Child, limit: Duration) -> anyhow::Result<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn share(lab: &Lab, homes: &[(String, NodeHome, Daemon)]) -> anyhow::Result<()> {
    let bin = app("fileshare")?;
    let find = |kind: NatKind| {
        homes
            .iter()
            .find(|(site, _, _)| lab.site(site).is_some_and(|s| s.spec.nat == kind))
    };
    let (Some(holder), Some(fetcher)) = (find(NatKind::Symmetric), find(NatKind::FullCone)) else {
        return Ok(());
    };
    let file = holder.1.dir.join("holiday-photos.tar");
    write_random(&file, FILE_BYTES)?;
    let ns = |site: &str| lab.site(site).map(|s| &s.host).context("site");
    let mut sharing = ns(&holder.0)?
        .command(&bin.to_string_lossy())
        .args(["--socket", &socket(&holder.1), "share"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start fileshare share")?;
    let listed = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        ns(&fetcher.0)
            .ok()
            .and_then(|n| {
                n.command(&bin.to_string_lossy())
                    .args(["--socket", &socket(&fetcher.1), "list"])
                    .output()
                    .ok()
            })
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains("holiday-photos.tar"))
    });
    let result = (|| -> anyhow::Result<()> {
        anyhow::ensure!(listed, "the shared file never showed in `fileshare list`");
        let out_path = fetcher.1.dir.join("holiday-photos.tar");
        let out = ns(&fetcher.0)?
            .command(&bin.to_string_lossy())
            .args([
                "--socket",
                &socket(&fetcher.1),
                "fetch",
                "holiday-photos.tar",
                "--out",
            ])
            .arg(&out_path)
            .output()
            .context("run fileshare fetch")?;
        println!(
            "── friend at `{}` (full cone) fetches the file shared by the one at `{}` (symmetric NAT)",
            fetcher.0, holder.0
        );
        println!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(
            std::fs::read(&out_path)? == std::fs::read(&file)?,
            "the fetched file differs from the shared one"
        );
        let _ = std::fs::remove_file(&out_path);
        Ok(())
    })();
    let _ = sharing.kill();
    let _ = sharing.wait();
    let _ = std::fs::remove_file(&file);
    result
}

fn write_random(path: &Path, n: usize) -> anyhow::Result<()> {
    let mut buf = vec![0u8; n];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buf)?;
    std::fs::write(path, buf)?;
    Ok(())
}
