//! `chamber ring create | invite | join | leave | list | show`. Membership changes go through
//! the running daemon (which then joins or leaves at once); with no daemon they change the
//! configuration and keystore directly and take effect at the next `chamber up`.

use std::path::Path;
use std::time::Duration;

use super::{CliError, RingCommand, load, print_json};
use crate::config::{FriendsPolicy, Paths};
use crate::control::{self, ControlError, Request};
use crate::keystore::{Keystore, SecretName};
use crate::membership::{self, InviteInfo, PendingInvites};
use crate::node::{self, NodeStatus};
use crate::picture;

pub(super) async fn run(cmd: RingCommand, config_path: &Path) -> Result<(), CliError> {
    match cmd {
        RingCommand::Create {
            name,
            owned,
            friends,
            fof,
        } => {
            membership::check_name(&name)?;
            let friends = friends.then_some(FriendsPolicy { fof });
            let req = Request::RingCreate {
                name: name.clone(),
                owned,
                friends,
            };
            change(config_path, req, &name, "created", |ks, _| {
                membership::create(config_path, ks, &name, owned, friends).map(drop)
            })
            .await
        }
        RingCommand::Revoke { name, jid } => {
            let req = Request::RingRevoke { name, jid };
            let v = ask(&socket(config_path)?, &req, Duration::from_secs(10)).await?;
            if let Some(text) = v.as_str() {
                println!("{text}");
            }
            Ok(())
        }
        RingCommand::Join { name } => {
            let req = Request::RingJoin { name: name.clone() };
            change(config_path, req, &name, "joined", |ks, paths| {
                let mut pending = PendingInvites::load(&paths.invites_file, &ks.node_secret()?)?;
                membership::accept(config_path, ks, &mut pending, &name).map(drop)
            })
            .await?;
            wait_joined(config_path, &name).await
        }
        RingCommand::Leave { name } => {
            let req = Request::RingLeave { name: name.clone() };
            change(config_path, req, &name, "left", |ks, _| {
                membership::leave(config_path, ks, &name)
            })
            .await
        }
        RingCommand::Invite {
            name,
            jid,
            admin,
            days,
        } => {
            let socket = socket(config_path)?;
            let valid_secs = match days {
                Some(d) if d.is_finite() && d > 0.0 => Some((d * 86_400.0).round() as u64),
                Some(d) => {
                    return Err(CliError::Usage(format!(
                        "--days {d}: a certificate must last a positive number of days"
                    )));
                }
                None => None,
            };
            let req = Request::RingInvite {
                name,
                jid,
                admin,
                valid_secs,
            };
            let v = ask(&socket, &req, Duration::from_secs(15)).await?;
            let to = v.get("to").and_then(|t| t.as_str()).unwrap_or("?");
            let fp = v.get("fingerprint").and_then(|t| t.as_str()).unwrap_or("?");
            println!("invite sent to {to} (node key {})", &fp[..16.min(fp.len())]);
            println!("they accept it with `chamber ring join`");
            Ok(())
        }
        RingCommand::List { json } => list(config_path, json).await,
        RingCommand::Show { name, svg, json } => {
            let status = node::query_status(&socket(config_path)?).await?;
            let ring = pick(&status, name.as_deref())?;
            let Some(view) = &ring.overlay else {
                return Err(CliError::Usage(format!(
                    "ring `{}` has no overlay state yet; try again in a moment",
                    ring.name
                )));
            };
            if json {
                print_json(&picture::members(view))?;
            } else {
                print!("{}", picture::text(view));
            }
            if let Some(path) = svg {
                std::fs::write(&path, picture::svg(view)).map_err(|e| {
                    CliError::Usage(format!("cannot write {}: {e}", path.display()))
                })?;
                if !json {
                    println!("picture written to {}", path.display());
                }
            }
            Ok(())
        }
    }
}

/// Asks the daemon to make the change; with no daemon, makes it with `local`.
async fn change(
    config_path: &Path,
    req: Request,
    name: &str,
    done: &str,
    local: impl FnOnce(&Keystore, &Paths) -> Result<(), membership::MembershipError>,
) -> Result<(), CliError> {
    let socket = socket(config_path)?;
    match ask(&socket, &req, Duration::from_secs(10)).await {
        Ok(v) => {
            let id = v.get("id").and_then(|i| i.as_str()).map(short_id);
            match id {
                Some(id) => println!("ring `{name}` ({id}) {done}; the running node is in it now"),
                None => println!("ring `{name}` {done}; the running node is out of it now"),
            }
            Ok(())
        }
        Err(CliError::Control(ControlError::NotRunning { .. })) => {
            let (config, paths) = load(config_path)?;
            let ks = Keystore::open(&config.keystore, paths.secrets_dir.clone())?;
            local(&ks, &paths)?;
            println!(
                "ring `{name}` {done}; no node is running, so this takes effect at `chamber up`"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// One request; a refusal becomes the daemon's message.
async fn ask(
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, CliError> {
    let r = control::request(socket, req, timeout).await?;
    if !r.ok {
        return Err(CliError::Usage(r.error.unwrap_or_else(|| "refused".into())));
    }
    Ok(r.status.unwrap_or(serde_json::Value::Null))
}

fn socket(config_path: &Path) -> Result<std::path::PathBuf, CliError> {
    let (config, paths) = load(config_path)?;
    Ok(config.control_socket.unwrap_or(paths.control_socket))
}

fn short_id(id: &str) -> String {
    format!("id {}…", &id[..12.min(id.len())])
}

/// The ring called `name`, or the only one.
fn pick<'a>(status: &'a NodeStatus, name: Option<&str>) -> Result<&'a node::RingStatus, CliError> {
    let names = || {
        status
            .rings
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => status.rings.iter().find(|r| r.name == n).ok_or_else(|| {
            CliError::Usage(format!(
                "the node is in no ring named `{n}` (rings: {})",
                names()
            ))
        }),
        None if status.rings.len() == 1 => Ok(&status.rings[0]),
        None if status.rings.is_empty() => Err(CliError::Usage(
            "the node is in no ring; `chamber ring create NAME` makes one".into(),
        )),
        None => Err(CliError::Usage(format!(
            "the node is in several rings ({}); name one",
            names()
        ))),
    }
}

/// One line of `chamber ring list`.
#[derive(serde::Serialize)]
struct Listed {
    name: String,
    id: Option<String>,
    /// Where the secret is (`keystore` or `file:PATH`).
    secret: String,
    /// From the running node, when there is one.
    connected: Option<bool>,
    size_estimate: Option<f64>,
    peers: Option<usize>,
}

async fn list(config_path: &Path, json: bool) -> Result<(), CliError> {
    let (config, paths) = load(config_path)?;
    let status = match node::query_status(&socket(config_path)?).await {
        Ok(s) => Some(s),
        Err(ControlError::NotRunning { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let ks = Keystore::open(&config.keystore, paths.secrets_dir.clone())?;
    let rings: Vec<Listed> = config
        .rings
        .iter()
        .map(|r| {
            let live = status
                .as_ref()
                .and_then(|s| s.rings.iter().find(|x| x.name == r.name));
            let view = live.and_then(|l| l.overlay.as_ref());
            let id = live.map(|l| l.id.clone()).or_else(|| {
                node::ring_spec(r, &ks)
                    .ok()
                    .map(|s| s.secret.ring_id().to_hex())
            });
            Listed {
                name: r.name.clone(),
                id,
                secret: serde_json::to_value(&r.secret)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                connected: view.map(|v| v.connected),
                size_estimate: view.map(|v| v.size_estimate),
                peers: view.map(|v| v.peers.len()),
            }
        })
        .collect();
    let invites: Vec<InviteInfo> = match &status {
        Some(s) => s.invites.clone(),
        None => match ks.get(&SecretName::NodeKey)? {
            Some(_) => PendingInvites::load(&paths.invites_file, &ks.node_secret()?)?.list(),
            None => Vec::new(),
        },
    };
    if json {
        return print_json(
            &serde_json::json!({ "rings": rings, "invites": invites, "running": status.is_some() }),
        );
    }
    if rings.is_empty() {
        println!("no rings configured; `chamber ring create NAME` makes one");
    }
    for r in &rings {
        let id =
            r.id.as_deref()
                .map(short_id)
                .unwrap_or_else(|| "secret unreadable".into());
        print!("{} ({id}, secret in {})", r.name, r.secret);
        match (r.connected, r.size_estimate, r.peers) {
            (Some(c), Some(n), Some(p)) => println!(
                ": {}, about {n:.0} members, {p} peers",
                if c { "connected" } else { "joining" }
            ),
            _ if status.is_some() => println!(": not running in the node"),
            _ => println!(),
        }
    }
    for i in &invites {
        println!(
            "invited to ring {} by {} — run `chamber ring join {}`",
            i.ring,
            i.from,
            membership::shell_word(&i.ring)
        );
    }
    if status.is_none() {
        println!("(no node is running; `chamber up` starts one)");
    }
    Ok(())
}

/// How long `chamber ring join` shows the node finding its place before it leaves it be.
const JOIN_WAIT: Duration = Duration::from_secs(30);

/// Shows, on one updating line, the running node linking into ring `name` until it is
/// connected (both ring neighbours linked) or [`JOIN_WAIT`] is over; nothing when no node runs.
async fn wait_joined(config_path: &Path, name: &str) -> Result<(), CliError> {
    let socket = socket(config_path)?;
    let start = std::time::Instant::now();
    let spin = ['|', '/', '-', '\\'];
    let mut i = 0;
    loop {
        let Ok(status) = crate::node::query_status(&socket).await else {
            return Ok(());
        };
        let view = status
            .rings
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.overlay.clone());
        let (peers, connected) = view.map_or((0, false), |v| (v.peers.len(), v.connected));
        if connected && peers > 0 {
            eprintln!(
                "\rring `{name}`: connected, {peers} peer(s) linked, in {:.1} s        ",
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if start.elapsed() > JOIN_WAIT {
            eprintln!(
                "\rring `{name}`: still joining after {} s ({peers} peer(s) linked); \
                 `chamber status` shows how it goes",
                JOIN_WAIT.as_secs()
            );
            return Ok(());
        }
        eprint!(
            "\r{} joining ring `{name}`: {peers} peer(s) linked, {:.0} s ",
            spin[i % spin.len()],
            start.elapsed().as_secs_f64()
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
