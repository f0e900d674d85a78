//! The social VPN: a TUN device per node, carrying IP between friends over the chamber ring.
//!
//! ```text
//! vpn up [--ifname chamber0] [--ipv4] [--name NAME]   # runs until Ctrl-C
//! vpn status [--json]                                  # our addresses, peers, counters
//! vpn hosts                                            # a hosts(5) table of the VPN
//! ```
//!
//! Every member gets an IPv6 ULA in the ring's /48 made from its overlay address, and with
//! `--ipv4` an address in 100.64.0.0/10 claimed in the DHT (see `addr.rs`). Packets ride
//! datagrams on service `vpn`, end to end encrypted by the daemons whatever the path (direct,
//! TURN or a relay through a friend); a packet whose source address is not its sender's is
//! dropped. `NAME.chamber` resolves friends (JID local part) and DHT-published names through
//! a DNS responder on our VPN addresses.
//!
//! Global options pick the daemon as for the other apps: `--socket PATH` (its app socket) or
//! `--config FILE` (chamber's configuration), and `--ring NAME` when the node is in several
//! rings. The VPN also reads the daemon's status over its control socket (the ring's id for
//! the prefix, friends' JIDs for names): `--control PATH`, by default `control.sock` beside
//! `--socket`, or the configured one.

mod addr;
mod device;
mod directory;
mod dns;
mod forward;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use brunet_compat::address::Address;
use chamber::api::Client;
use clap::{Parser, Subcommand};

use addr::{Record, RingPrefix};
use directory::{Claim, Directory};
use forward::{Counters, Forwarder, PeerStats};

/// How often our IPv4 claim is checked against the others' (one DHT get).
const CLAIM_WATCH: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(name = "vpn", about = "A social VPN over a chamber ring")]
struct Cli {
    /// chamber's configuration file naming the daemon's sockets.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The daemon's app socket (default: from the configuration).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// The daemon's control socket (default: `control.sock` beside `--socket`, or from the
    /// configuration).
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    /// The ring (by local name) when the node is in several.
    #[arg(long, global = true)]
    ring: Option<String>,
    /// The TUN device.
    #[arg(long, global = true, default_value = "chamber0")]
    ifname: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates the TUN device and forwards packets until interrupted.
    Up {
        /// Also claim an IPv4 address in 100.64.0.0/10.
        #[arg(long)]
        ipv4: bool,
        /// The IPv4 address to claim when it is free (implies --ipv4).
        #[arg(long, value_parser = parse_v4)]
        ipv4_prefer: Option<Ipv4Addr>,
        /// Publish NAME in the ring's DHT, so members reach us as NAME.chamber.
        #[arg(long)]
        name: Option<String>,
    },
    /// Our addresses, the peers we talk to, and what was dropped.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A hosts(5) table of the VPN members we can name.
    Hosts,
}

/// What `vpn up` tells `vpn status`, through a file beside the app socket.
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    pid: u32,
    ifname: String,
    ring: String,
    address: String,
    prefix: String,
    ip6: Ipv6Addr,
    ip4: Option<Ipv4Addr>,
    name: Option<String>,
    dns: Vec<SocketAddr>,
    counters: Counters,
    lookups: u64,
    peers: BTreeMap<String, PeerStats>,
    updated_ms: u64,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vpn: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let d = daemon(&cli)?;
        match &cli.cmd {
            Cmd::Up {
                ipv4,
                ipv4_prefer,
                name,
            } => {
                let v4 = (*ipv4 || ipv4_prefer.is_some()).then_some(*ipv4_prefer);
                up(&cli, &d, v4, name.clone()).await
            }
            Cmd::Status { json } => status(&cli, &d, *json),
            Cmd::Hosts => hosts(&cli, &d).await,
        }
    })
}

/// The daemon's sockets.
struct Daemon {
    app: PathBuf,
    control: PathBuf,
}

fn daemon(cli: &Cli) -> anyhow::Result<Daemon> {
    let configured = || -> anyhow::Result<PathBuf> {
        let paths = chamber::config::Paths::from_env()?;
        let file = cli.config.clone().unwrap_or(paths.config_file);
        Ok(if file.exists() {
            chamber::config::Config::load(&file)?
                .control_socket
                .unwrap_or(paths.control_socket)
        } else {
            paths.control_socket
        })
    };
    let control = match (&cli.control, &cli.socket) {
        (Some(c), _) => c.clone(),
        (None, Some(app)) => app.with_file_name("control.sock"),
        (None, None) => configured()?,
    };
    let app = match &cli.socket {
        Some(a) => a.clone(),
        None => chamber::services::app_socket::socket_path(&control),
    };
    Ok(Daemon { app, control })
}

fn state_file(d: &Daemon, ifname: &str) -> PathBuf {
    d.app.with_file_name(format!("vpn-{ifname}.json"))
}

/// Connects to the daemon and works out the ring's prefix.
async fn connect(cli: &Cli, d: &Daemon) -> anyhow::Result<Arc<Directory>> {
    let client = Client::connect(&d.app, cli.ring.as_deref()).await?;
    let id = directory::ring_id(&d.control, client.ring()).await?;
    let prefix = RingPrefix::from_ring_id(&id);
    Ok(Arc::new(Directory::new(Arc::new(client), prefix)))
}

/// An address inside 100.64.0.0/10 (not its first or last).
fn parse_v4(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s.parse().map_err(|e| format!("{e}"))?;
    let host = u32::from(ip) & ((1 << (32 - addr::V4_PREFIX_LEN)) - 1);
    if !addr::in_v4_net(&ip) || host == 0 || host == (1 << (32 - addr::V4_PREFIX_LEN)) - 1 {
        return Err(format!("{ip} is not a host address in 100.64.0.0/10"));
    }
    Ok(ip)
}

/// `ipv4`: `None` for no IPv4, `Some(preferred)` to claim one.
async fn up(
    cli: &Cli,
    d: &Daemon,
    ipv4: Option<Option<Ipv4Addr>>,
    name: Option<String>,
) -> anyhow::Result<()> {
    device::check_capability()?;
    let dir = connect(cli, d).await?;
    let me = dir.client.address();
    let ip6 = dir.prefix.address_of(&me);
    let ifname = cli.ifname.clone();
    // Subscribe before the device exists, so no early packet is missed.
    let sub = dir.client.subscribe(addr::SERVICE).await?;
    let dev = Arc::new(device::create(&ifname, ip6, None)?);
    let fwd = Forwarder::new(dir.clone(), dev, ip6);
    println!(
        "vpn: {ifname} up in ring {}: {ip6}/{} (ring prefix {}/{})",
        dir.client.ring(),
        addr::V6_PREFIX_LEN,
        dir.prefix.network(),
        addr::V6_PREFIX_LEN
    );
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(fwd.clone().outbound());
    tasks.spawn(fwd.clone().inbound(sub));
    let names = Arc::new(dns::Names::new(dir.clone(), d.control.clone()));
    let dns6 = SocketAddr::new(ip6.into(), 53);
    tasks.spawn(dns::serve(names.clone(), dns6));
    let mut dns_on = vec![dns6];

    let mut record = Record { ip4: None, name };
    dir.publish(ip6, &record).await?;
    let mut claim = None;
    if let Some(prefer) = ipv4 {
        let c = dir.claim_ipv4(prefer).await?;
        take_v4(&fwd, &ifname, None, c.ip)?;
        let dns4 = SocketAddr::new(c.ip.into(), 53);
        tasks.spawn(dns::serve(names.clone(), dns4));
        dns_on.push(dns4);
        dir.withdraw(ip6, &record).await;
        record.ip4 = Some(c.ip);
        dir.publish(ip6, &record).await?;
        println!("vpn: IPv4 {}/{} claimed", c.ip, addr::V4_PREFIX_LEN);
        claim = Some(c);
    }
    if let Some(n) = &record.name {
        println!("vpn: published as {n}.{}", dns::TLD);
    }
    println!(
        "vpn: DNS for .{} on {}",
        dns::TLD,
        dns_on
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let state_path = state_file(d, &ifname);
    let mut refresh = tokio::time::interval(Duration::from_secs(60));
    refresh.tick().await;
    // A claim that lost a race (two claimants each saw only their own claim) is found out
    // within seconds, not at the next refresh.
    let mut watch = tokio::time::interval(CLAIM_WATCH);
    watch.tick().await;
    let mut report = tokio::time::interval(Duration::from_secs(1));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = term.recv() => break Ok(()),
            done = tasks.join_next() => {
                break match done {
                    Some(Ok(Err(e))) => Err(e),
                    Some(Err(e)) => Err(e.into()),
                    _ => Err(anyhow::anyhow!("a VPN task ended")),
                };
            }
            _ = report.tick() => {
                let s = State {
                    pid: std::process::id(),
                    ifname: ifname.clone(),
                    ring: dir.client.ring().to_owned(),
                    address: me.to_string(),
                    prefix: format!("{}/{}", dir.prefix.network(), addr::V6_PREFIX_LEN),
                    ip6,
                    ip4: record.ip4,
                    name: record.name.clone(),
                    dns: dns_on.clone(),
                    counters: fwd.counters(),
                    lookups: fwd.lookups(),
                    peers: fwd.peers().into_iter().map(|(a, p)| (a.to_string(), p)).collect(),
                    updated_ms: directory::unix_ms(),
                };
                if let Err(e) = write_state(&state_path, &s) {
                    tracing::warn!(%e, "cannot write {}", state_path.display());
                }
            }
            _ = watch.tick() => {
                if let Err(e) = check_claim(&dir, &fwd, &ifname, ip6, &mut record, &mut claim).await {
                    tracing::warn!(%e, "checking our IPv4 claim failed; retrying");
                }
            }
            _ = refresh.tick() => {
                if let Err(e) = keep_up(&dir, &fwd, &ifname, ip6, &mut record, &mut claim).await {
                    tracing::warn!(%e, "refreshing our DHT records failed; retrying in a minute");
                }
            }
        }
    };
    let _ = std::fs::remove_file(&state_path);
    dir.withdraw(ip6, &record).await;
    if let Some(c) = &claim {
        let _ = dir
            .client
            .dht_remove(&addr::claim_key(c.ip), &c.value)
            .await;
    }
    println!("vpn: {ifname} down");
    result
}

/// Puts our records again, and checks we still hold our IPv4 (moving to another if not).
async fn keep_up(
    dir: &Directory,
    fwd: &Forwarder,
    ifname: &str,
    ip6: Ipv6Addr,
    record: &mut Record,
    claim: &mut Option<Claim>,
) -> anyhow::Result<()> {
    if let Some(c) = claim.clone() {
        let key = addr::claim_key(c.ip);
        directory::retry(|| dir.client.dht_put(&key, &c.value, directory::TTL)).await?;
    }
    check_claim(dir, fwd, ifname, ip6, record, claim).await?;
    dir.publish(ip6, record).await
}

/// Moves to another IPv4 when an earlier claim on ours has shown up (two claimants raced, or
/// two parts of a ring merged).
async fn check_claim(
    dir: &Directory,
    fwd: &Forwarder,
    ifname: &str,
    ip6: Ipv6Addr,
    record: &mut Record,
    claim: &mut Option<Claim>,
) -> anyhow::Result<()> {
    let Some(c) = claim.clone() else {
        return Ok(());
    };
    if dir.still_ours(&c).await? {
        return Ok(());
    }
    tracing::warn!(ip = %c.ip, "an earlier claim on our IPv4 appeared; moving");
    let _ = dir
        .client
        .dht_remove(&addr::claim_key(c.ip), &c.value)
        .await;
    let next = dir.claim_ipv4(None).await?;
    take_v4(fwd, ifname, Some(c.ip), next.ip)?;
    dir.withdraw(ip6, record).await;
    record.ip4 = Some(next.ip);
    println!("vpn: IPv4 moved from {} to {}", c.ip, next.ip);
    *claim = Some(next);
    dir.publish(ip6, record).await
}

fn take_v4(
    fwd: &Forwarder,
    ifname: &str,
    old: Option<Ipv4Addr>,
    new: Ipv4Addr,
) -> anyhow::Result<()> {
    if let Some(o) = old {
        device::remove_v4(ifname, o)?;
    }
    device::add_v4(ifname, new)?;
    if let Ok(mut ip4) = fwd.ip4.lock() {
        *ip4 = Some(new);
    }
    fwd.dir.set_own_v4(Some(new));
    Ok(())
}

fn write_state(path: &Path, s: &State) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn status(cli: &Cli, d: &Daemon, json: bool) -> anyhow::Result<()> {
    let path = state_file(d, &cli.ifname);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no VPN is running on {} for this node (no {}); start one with `vpn up`",
            cli.ifname,
            path.display()
        )
    })?;
    let s: State = serde_json::from_str(&text)?;
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(s.pid as libc::pid_t, 0) } == 0;
    if !alive {
        bail!(
            "the VPN on {} (pid {}) is gone without cleaning up; start it again with `vpn up`",
            s.ifname,
            s.pid
        );
    }
    if json {
        println!("{text}");
        return Ok(());
    }
    let c = &s.counters;
    println!("VPN {} (pid {}) in ring {}", s.ifname, s.pid, s.ring);
    println!("  overlay address  {}", s.address);
    println!("  IPv6             {} (ring prefix {})", s.ip6, s.prefix);
    match s.ip4 {
        Some(ip4) => println!("  IPv4             {ip4}"),
        None => println!("  IPv4             none (start with --ipv4 to claim one)"),
    }
    if let Some(n) = &s.name {
        println!("  name             {n}.{}", dns::TLD);
    }
    let dns: Vec<String> = s.dns.iter().map(ToString::to_string).collect();
    println!("  DNS              {}", dns.join(", "));
    println!(
        "  forwarded        sent {} packets ({} bytes), received {} ({} bytes)",
        c.sent_packets, c.sent_bytes, c.received_packets, c.received_bytes
    );
    println!(
        "  dropped          spoofed {}, no owner {}, not ours {}, malformed {}, queue full {}",
        c.spoofed, c.no_owner, c.not_ours, c.malformed, c.queue_full
    );
    println!("peers ({}):", s.peers.len());
    let now = directory::unix_ms();
    for (a, p) in &s.peers {
        let ips: Vec<String> = p.ips.iter().map(ToString::to_string).collect();
        println!(
            "  {a}  {}  sent {} received {}  last {} s ago",
            ips.join(", "),
            p.sent,
            p.received,
            now.saturating_sub(p.last_ms) / 1000
        );
    }
    Ok(())
}

async fn hosts(cli: &Cli, d: &Daemon) -> anyhow::Result<()> {
    let dir = connect(cli, d).await?;
    let people = directory::people(&d.control, dir.client.ring()).await?;
    let members = dir.members().await?;
    let running: BTreeMap<Address, Record> = members.into_iter().collect();
    let mut names: BTreeMap<Address, Vec<String>> = BTreeMap::new();
    let mut idle = Vec::new();
    let me = dir.client.address();
    let own = people.own.iter().map(|j| (j, Some(me)));
    let friends = people.friends.iter().map(|j| (j, None));
    for (jid, known) in own.chain(friends) {
        let a = match known {
            Some(a) => a,
            None => match dir.client.resolve(jid).await {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        if !running.contains_key(&a) {
            idle.push(jid.clone());
            continue;
        }
        let (local, domain) = jid.split_once('@').unwrap_or((jid, ""));
        let list = names.entry(a).or_default();
        if people.with_local(local).len() == 1 {
            list.push(format!("{local}.{}", dns::TLD));
        }
        list.push(format!("{local}.{domain}.{}", dns::TLD));
    }
    for (a, r) in &running {
        if let Some(n) = &r.name
            && dir.client.resolve(n).await.ok() == Some(*a)
        {
            names
                .entry(*a)
                .or_default()
                .push(format!("{n}.{}", dns::TLD));
        }
    }
    println!(
        "# chamber VPN, ring {} ({}/{}), from `vpn hosts`",
        dir.client.ring(),
        dir.prefix.network(),
        addr::V6_PREFIX_LEN
    );
    for (a, list) in &names {
        let mut ips: Vec<IpAddr> = vec![dir.prefix.address_of(a).into()];
        if let Ok(r) = dir.record_of(a).await
            && let Some(ip4) = r.ip4
        {
            ips.push(ip4.into());
        }
        for ip in ips {
            println!("{ip:<40} {}", list.join(" "));
        }
    }
    for jid in idle {
        println!("# {jid} runs chamber but no VPN");
    }
    Ok(())
}
