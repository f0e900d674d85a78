//! `chamber up | status | stop`: the foreground daemon and the commands that talk to it over
//! its control socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CliError, load, print_json};
use crate::control::{self, Request};
use crate::node::{self, NodeSetup};
use crate::runtime::PingReport;

pub(super) async fn up(config_path: &Path) -> Result<(), CliError> {
    let setup = NodeSetup::load(Some(config_path))?;
    eprintln!(
        "chamber: node {} with {} account(s); control socket {}; secrets in the {}",
        setup.secret.public().fingerprint().to_hex(),
        setup.accounts.len(),
        setup.control_socket.display(),
        setup.keystore.info().description
    );
    if let Some(reason) = &setup.keystore.info().fallback_reason {
        eprintln!("chamber: note: the OS keyring was not used: {reason}");
    }
    node::run(setup, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM: both end the node cleanly.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

pub(super) fn socket(config_path: &Path) -> Result<PathBuf, CliError> {
    let (config, paths) = load(config_path)?;
    Ok(config.control_socket.unwrap_or(paths.control_socket))
}

pub(super) async fn status(config_path: &Path, json: bool) -> Result<(), CliError> {
    let status = node::query_status(&socket(config_path)?).await?;
    if json {
        print_json(&status)
    } else {
        print!("{status}");
        Ok(())
    }
}

pub(super) async fn stop(config_path: &Path) -> Result<(), CliError> {
    let path = socket(config_path)?;
    control::request(&path, &Request::Stop, Duration::from_secs(5)).await?;
    // The daemon removes its socket once every account has closed.
    for _ in 0..100 {
        if !path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("stopped");
    Ok(())
}

pub(super) async fn ping(
    config_path: &Path,
    target: &str,
    count: u32,
    json: bool,
) -> Result<(), CliError> {
    let path = socket(config_path)?;
    let mut answered = 0;
    for i in 0..count {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let req = Request::Ping {
            target: target.to_owned(),
        };
        let r = control::request(&path, &req, Duration::from_secs(10)).await?;
        match (r.status, r.error) {
            (Some(v), _) => {
                answered += 1;
                let report: PingReport = serde_json::from_value(v).map_err(|e| {
                    CliError::Usage(format!("the daemon's answer is unreadable: {e}"))
                })?;
                if json {
                    print_json(&report)?;
                } else {
                    println!(
                        "reply from {} over ring {}: {} hops out, {} back, {:.1} ms",
                        report.target,
                        report.ring,
                        report.hops_out,
                        report.hops_back,
                        report.rtt_ms
                    );
                }
            }
            (None, e) => eprintln!("no reply: {}", e.unwrap_or_default()),
        }
    }
    if answered == 0 {
        return Err(CliError::Usage(format!(
            "{target} did not answer; check `chamber status` (is the ring connected?)"
        )));
    }
    Ok(())
}
