//! A lab leaves nothing behind: no namespace, no process, no nftables table, no file, whether it
//! is dropped, unwound by a failing test, or its CLI is stopped with Ctrl-C.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chamber_lab::{Impairment, Lab, LabSpec, NatKind, SiteSpec, netns};

fn root_nft_tables() -> String {
    chamber_lab::cmd::run("nft", ["list", "tables"]).unwrap_or_default()
}

fn lab_pids(id: &str) -> Vec<i32> {
    netns::lab_namespaces()
        .iter()
        .filter(|n| n.starts_with(id))
        .flat_map(|n| netns::pids(n))
        .collect()
}

/// Whether `pid` runs (a zombie waiting for its reaper does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn assert_gone(id: &str, dir: &Path, pids: &[i32], tables: &str) {
    assert!(
        netns::lab_namespaces().iter().all(|n| !n.starts_with(id)),
        "namespaces of {id} remain"
    );
    let still: Vec<_> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(still.is_empty(), "processes of {id} still run: {still:?}");
    assert!(!dir.exists(), "{} remains", dir.display());
    let etc = std::fs::read_dir("/etc/netns").map(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(id))
    });
    assert!(!etc.unwrap_or(false), "/etc/netns entries of {id} remain");
    assert_eq!(
        root_nft_tables(),
        tables,
        "the root namespace's nftables changed"
    );
}

fn spec() -> LabSpec {
    let mut delayed = SiteSpec::new("slow", NatKind::Symmetric);
    delayed.impair = Impairment {
        delay_ms: 10,
        loss_percent: 1.0,
    };
    LabSpec::with_sites(vec![
        SiteSpec::new("home", NatKind::PortRestrictedCone),
        delayed,
    ])
}

#[test]
fn dropping_or_unwinding_a_lab_leaves_nothing_behind() {
    if !common::lab_available() {
        return;
    }
    let tables = root_nft_tables();

    let lab = Lab::up(spec()).expect("lab up");
    let (id, dir) = (lab.id().to_string(), lab.dir().to_path_buf());
    let pids = lab_pids(&id);
    assert!(
        pids.len() >= 3,
        "expected the servers to run in the lab, found {pids:?}"
    );
    drop(lab);
    assert_gone(&id, &dir, &pids, &tables);

    // A test that fails while holding a lab unwinds through its Drop.
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let mut spec = spec();
        spec.ejabberd = false;
        let lab = Lab::up(spec).expect("lab up");
        *seen.lock().expect("lock") = Some((
            lab.id().to_string(),
            lab.dir().to_path_buf(),
            lab_pids(lab.id()),
        ));
        panic!("a failing test");
    });
    assert!(result.is_err());
    let (id, dir, pids) = seen.into_inner().expect("lock").expect("the lab came up");
    assert_gone(&id, &dir, &pids, &tables);
}

#[test]
fn ctrl_c_on_the_cli_tears_the_lab_down() {
    if !common::lab_available() {
        return;
    }
    let tables = root_nft_tables();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chamber-lab"))
        .args(["up", "--sites", "a:full,b:blocked", "--users", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chamber-lab");
    let prefix = format!("chl{}x", child.id());
    let start = Instant::now();
    while lab_pids(&prefix).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the CLI lab did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Wait for the JSON description, which is printed once everything runs.
    let mut out = child.stdout.take().expect("stdout");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&mut out, 2), &mut text).expect("read");
    let pids = lab_pids(&prefix);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .expect("SIGINT");
    let status = child.wait().expect("wait");
    assert!(status.success(), "chamber-lab exited with {status}");
    let dir = std::env::temp_dir()
        .join("chamber-lab")
        .join(format!("{prefix}0"));
    assert_gone(&prefix, &dir, &pids, &tables);
}
