//! fileshare: share files with a chamber ring, list what the ring shares, and fetch a file
//! from one or several holders at once, resuming where an interrupted fetch stopped.
//!
//! ```text
//! fileshare [--ring R] [--socket PATH | --config PATH] share FILE... [--name N]
//! fileshare [...] list [--json]
//! fileshare [...] fetch NAME|HASH [--out PATH] [--json] [--limit-rate BYTES_PER_S]
//! ```
//!
//! `share` hashes each file (SHA-256), publishes it in the ring's DHT and serves it until it
//! is stopped (Ctrl-C or SIGTERM withdraw the records; after a SIGKILL they expire within
//! [`TTL`]). `list` shows every shared file: name, size, hash and holders. `fetch` finds the
//! holders of a name or hash (a unique prefix of 8+ hex digits will do), fetches 1 MiB chunks
//! from all of them in parallel over streams, with a progress bar on a terminal and one plain
//! line at the end, checks the SHA-256 and only then renames `PATH.part` to `PATH`. If a
//! holder fails, the others take over its chunks; if all fail, the fetch stops with an error
//! and the same command resumes it from `PATH.part`, whose sidecar `PATH.part.json` lists the
//! chunks already written. A file whose hash does not match is refused and deleted.
//!
//! The daemon's app socket is `--socket`, or the one of the daemon configured by `--config`
//! (default: the user's configuration), as `chamber up` runs it.
//!
//! # Protocol
//!
//! **DHT.** Each holder of a file writes one JSON record `{"name","size","sha256","holder"}`
//! (holder = its own ring address, which must be the value's signed writer, or the record is
//! ignored) under two keys: `fileshare/file/<sha256 hex>` (the holders of one file) and the
//! listing key `fileshare/list/<first hex digit of the hash>` (16 shards, so one DHT answer
//! stays small however many files the ring shares). Records live [`TTL`] and are written again
//! every [`REPUBLISH`].
//!
//! **Streams.** A holder listens for streams on service `fileshare`. On a stream the fetcher
//! sends requests one after another and reads each answer before the next:
//!
//! ```text
//! request  "FSR1" ‖ sha256:32 ‖ offset:u64 BE ‖ length:u32 BE      (1 ≤ length ≤ 4 MiB)
//! answer   0x00 ‖ exactly `length` bytes of the file
//!        | 0x01 ‖ len:u16 BE ‖ UTF-8 reason    (unknown file, range outside it, file changed)
//! ```
//!
//! A refused range leaves the stream usable; a request without the magic is refused and the
//! stream closed. The fetcher finishes its side when done; a stream that breaks is a read
//! error on both sides, never a short file.

mod fetch;
mod proto;
mod share;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chamber::api::Client;
use clap::{Parser, Subcommand};

use proto::{Hash, Record};

/// How long a DHT record lives.
pub const TTL: Duration = Duration::from_secs(600);
/// How often a holder writes its records again (three times per lifetime).
pub const REPUBLISH: Duration = Duration::from_secs(200);

#[derive(Parser)]
#[command(
    name = "fileshare",
    about = "Share and fetch files over a chamber ring"
)]
struct Cli {
    /// The ring to work in (default: the node's only ring).
    #[arg(long, global = true)]
    ring: Option<String>,
    /// The daemon's app socket (default: from the configuration).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// The chamber configuration file naming the daemon's sockets.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hash, publish and serve files until stopped.
    Share {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The name to share under (one file only; default: its file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// What the ring shares.
    List {
        /// One JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a file by name or hash.
    Fetch {
        /// A shared name, a SHA-256 (64 hex digits) or a unique prefix of 8+ hex digits.
        target: String,
        /// Where to write it (default: its name in the current folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print a JSON summary at the end instead of the plain line.
        #[arg(long)]
        json: bool,
        /// Fetch at most this many bytes per second (suffixes k, M, G).
        #[arg(long, value_parser = parse_rate)]
        limit_rate: Option<u64>,
    },
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a rate"))?;
    match n.checked_mul(mult) {
        Some(r) if r > 0 => Ok(r),
        _ => Err(format!("{s:?} is not a usable rate")),
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FILESHARE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fileshare: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("fileshare: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let socket = match &cli.socket {
        Some(s) => s.clone(),
        None => chamber::api::default_socket(cli.config.as_deref())?,
    };
    let client = Client::connect(&socket, cli.ring.as_deref()).await?;
    match cli.command {
        Command::Share { files, name } => {
            if name.is_some() && files.len() > 1 {
                bail!("--name names one file; share several under their own names");
            }
            share::run(client, files, name).await
        }
        Command::List { json } => list(&client, json).await,
        Command::Fetch {
            target,
            out,
            json,
            limit_rate,
        } => {
            fetch::run(
                client,
                fetch::Options {
                    target,
                    out,
                    json,
                    limit_rate,
                },
            )
            .await
        }
    }
}

/// One shared file as the listing shows it.
#[derive(Debug, serde::Serialize)]
pub struct Listed {
    /// The names its holders share it under.
    pub names: Vec<String>,
    /// Its size.
    pub size: u64,
    /// SHA-256 hex.
    pub sha256: String,
    /// Who holds it.
    pub holders: Vec<String>,
}

/// Everything the ring's listing shows, by hash (every shard read at once).
pub async fn listing(client: &Client) -> Result<BTreeMap<Hash, Listed>> {
    let gets = (0..proto::SHARDS).map(|i| {
        let key = proto::list_shard(i);
        async move { (client.dht_get(&key).await, key) }
    });
    let mut files: BTreeMap<Hash, Listed> = BTreeMap::new();
    let mut failed = Vec::new();
    for (got, key) in futures::future::join_all(gets).await {
        let entries = match got {
            Ok(e) => e,
            Err(e) => {
                failed.push(format!("{key}: {e}"));
                continue;
            }
        };
        for e in entries {
            let Some((r, hash)) = Record::decode(&e.value, &e.writer.to_string()) else {
                continue;
            };
            let f = files.entry(hash).or_insert_with(|| Listed {
                names: Vec::new(),
                size: r.size,
                sha256: r.sha256.clone(),
                holders: Vec::new(),
            });
            // Holders disagreeing on the size of one hash: keep the first word; a fetch
            // checks the hash anyway.
            if f.size != r.size {
                continue;
            }
            if !f.names.contains(&r.name) {
                f.names.push(r.name);
            }
            if !f.holders.contains(&r.holder) {
                f.holders.push(r.holder);
            }
        }
    }
    if failed.len() == proto::SHARDS {
        bail!(
            "the DHT did not answer: {}",
            failed.first().map_or("", String::as_str)
        );
    }
    for f in &failed {
        tracing::warn!("part of the listing is missing: {f}");
    }
    Ok(files)
}

async fn list(client: &Client, json: bool) -> Result<()> {
    let files = listing(client).await.context("cannot read the listing")?;
    if json {
        for f in files.values() {
            println!("{}", serde_json::to_string(f)?);
        }
        return Ok(());
    }
    if files.is_empty() {
        println!("nothing is shared in ring {}", client.ring());
        return Ok(());
    }
    println!("{:<32} {:>12}  {:<16}  holders", "name", "size", "sha256");
    for f in files.values() {
        println!(
            "{:<32} {:>12}  {:<16}  {}",
            f.names.join(", "),
            human(f.size),
            &f.sha256[..16],
            f.holders.join(" ")
        );
    }
    Ok(())
}

/// Bytes for people.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
