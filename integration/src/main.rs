//! `chamber-lab`: bring a lab up, check the machine, or clean up after a killed run.

mod demo;

use std::sync::mpsc;

use anyhow::Context;
use chamber_lab::{Impairment, Lab, LabSpec, NatKind, SiteSpec};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "A lab of real XMPP servers, coturn and NATs in network namespaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a lab, print it as JSON, and keep it until Ctrl-C.
    Up {
        /// Sites as NAME:KIND[:DELAY_MS[:LOSS_PERCENT]] (kinds: none, full, restricted, port,
        /// symmetric, blocked). Default: one site of each kind.
        #[arg(long, value_delimiter = ',')]
        sites: Vec<String>,
        /// Accounts user1…userN on each server.
        #[arg(long)]
        users: Option<u32>,
    },
    /// Run the demo: friends behind every NAT kind log in and learn their network.
    Demo {
        /// Print the friends' reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that this machine can run a lab (root, packages, no stale namespaces).
    Check,
    /// Remove namespaces left by labs whose process is gone.
    Clean,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { json } => {
            ctrlc::set_handler(|| {
                let removed = chamber_lab::clean(false);
                eprintln!("interrupted: removed {} lab namespace(s)", removed.len());
                std::process::exit(130);
            })
            .context("cannot install the Ctrl-C handler")?;
            demo::run(json)?;
        }
        Command::Check => {
            Lab::preflight()?;
            println!("this machine can run a chamber lab");
        }
        Command::Clean => {
            let removed = chamber_lab::clean(true);
            println!(
                "removed {} stale namespace(s){}",
                removed.len(),
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", removed.join(", "))
                }
            );
        }
        Command::Up { sites, users } => {
            let mut spec = if sites.is_empty() {
                LabSpec::one_of_each()
            } else {
                LabSpec::with_sites(
                    sites
                        .iter()
                        .map(|s| parse_site(s))
                        .collect::<anyhow::Result<_>>()?,
                )
            };
            if let Some(u) = users {
                spec.users = u;
            }
            let (tx, rx) = mpsc::channel();
            ctrlc::set_handler(move || {
                let _ = tx.send(());
            })
            .context("cannot install the Ctrl-C handler")?;
            let lab = Lab::up(spec)?;
            println!("{}", serde_json::to_string_pretty(&lab.describe())?);
            eprintln!("lab {} is up; Ctrl-C tears it down", lab.id());
            let _ = rx.recv();
            lab.down();
            eprintln!("lab torn down");
        }
    }
    Ok(())
}

fn parse_site(s: &str) -> anyhow::Result<SiteSpec> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, kind) = match parts.as_slice() {
        [name, kind, ..] => (*name, kind.parse::<NatKind>().map_err(anyhow::Error::msg)?),
        _ => anyhow::bail!("site `{s}`: write NAME:KIND, e.g. home:port"),
    };
    let mut impair = Impairment::default();
    if let Some(d) = parts.get(2) {
        impair.delay_ms = d
            .parse()
            .with_context(|| format!("site `{s}`: delay must be whole milliseconds"))?;
    }
    if let Some(l) = parts.get(3) {
        impair.loss_percent = l
            .parse()
            .with_context(|| format!("site `{s}`: loss must be a percentage"))?;
    }
    Ok(SiteSpec {
        name: name.to_string(),
        nat: kind,
        impair,
    })
}
