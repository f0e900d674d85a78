//! The daemon: runs the accounts, drives rendezvous, checks the network, answers the control
//! socket. One loop owns the [`Rendezvous`] state machine and feeds it the accounts' events, IQ
//! answers and the time; accounts run in their own tasks behind [`AccountHandle`]s.
//!
//! ```no_run
//! # async fn f() -> Result<(), chamber::node::NodeError> {
//! let setup = chamber::node::NodeSetup::load(None)?;
//! chamber::node::run(setup, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![warn(missing_docs)]

mod bridge;
mod invites;
mod reflection;
mod renewal;
mod rings;
mod setup;
mod status;

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use xmpp_ext::NodeSecret;

pub use setup::{NodeError, NodeSetup, ring_spec};
pub use status::{FriendStatus, NodeStatus, RingStatus};

use crate::account::{AccountEvent, AccountHandle, IqError, unix_ms};
use crate::control::{self, Request, Response};
use crate::rendezvous::{FriendEvent, Output, Rendezvous};
use crate::runtime::{RuntimeConfig, RuntimeHandle};
use crate::trust::limits::Limits;
use crate::trust::{KeySource, PinBook};
use rings::Rings;
use status::FriendTable;

/// How long each account gets to close its stream on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the node until `shutdown` completes (or a `stop` request arrives), then closes every
/// account cleanly so no ghost presence stays behind.
pub async fn run(setup: NodeSetup, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    let rings = Rings::load(&setup);
    let pins = PinBook::load(&setup.pins_file)?;
    let listener = control::bind(&setup.control_socket).await?;
    let (events_tx, mut events) = mpsc::channel(1024);
    let mut handles = Vec::new();
    for (i, cfg) in setup.accounts.iter().enumerate() {
        handles.push(AccountHandle::spawn(
            i,
            cfg,
            setup.link.clone(),
            events_tx.clone(),
        )?);
    }
    drop(events_tx);
    let (control_tx, mut control_rx) = mpsc::channel(16);
    let server = tokio::spawn(control::serve(listener, control_tx));
    let (iq_tx, mut iq_results) = mpsc::unbounded_channel::<(u64, Result<_, IqError>)>();
    let (net_tx, mut net_rx) = mpsc::channel(4);
    let public = setup.secret.public();
    let runtime = RuntimeHandle::spawn(
        &setup.secret,
        setup.ring_specs.clone(),
        handles.clone(),
        RuntimeConfig {
            cache_file: Some(setup.peer_cache.clone()),
            revoked_file: Some(setup.revoked_file.clone()),
            friend_keys: pins.fingerprints(),
            ..RuntimeConfig::default()
        },
    );
    let app_socket = crate::services::app_socket::socket_path(&setup.control_socket);
    let (apps, services) = start_services(&setup.secret, &runtime, &app_socket).await?;
    renewal::serve(&services, runtime.clone());
    let renewing = tokio::spawn(renewal::run(
        setup.config_path.clone(),
        NodeSecret::from_bytes(&setup.secret.to_bytes()),
        services,
        runtime.clone(),
    ));
    let mut rv = Rendezvous::new(
        NodeSecret::from_bytes(&setup.secret.to_bytes()),
        setup.rings.clone(),
        handles.iter().map(|h| h.jid().clone()).collect(),
        setup.rendezvous.clone(),
    );
    rv.set_pins(pins);
    let (keys_seen_tx, mut keys_seen) = mpsc::unbounded_channel();
    let mut node = Node {
        status: NodeStatus {
            pid: std::process::id(),
            started_ms: unix_ms(),
            fingerprint: public.fingerprint().to_hex(),
            address: public.overlay_address().to_string(),
            keystore: setup.keystore.info().clone(),
            accounts: Vec::new(),
            rings: Vec::new(),
            net: None,
            invites: Vec::new(),
            pinned_key_warnings: Vec::new(),
            limits: Default::default(),
        },
        friends: FriendTable::new(),
        netcheck_started: false,
        rings,
        limits: Limits::default(),
    };
    tracing::info!(fingerprint = %node.status.fingerprint, accounts = handles.len(),
        rings = setup.rings.len(), keystore = %setup.keystore.info().kind, "node up");
    tokio::pin!(shutdown);
    loop {
        let wake = rv.poll_timeout();
        tokio::select! {
            () = &mut shutdown => break,
            Some((i, ev)) = events.recv() => {
                let now = Instant::now().into_std();
                match ev {
                    AccountEvent::Online { bound_jid, resumed } => {
                        runtime.account_online(i, bound_jid.clone()).await;
                        rv.online(i, bound_jid, resumed, now);
                        if !node.netcheck_started {
                            node.netcheck_started = true;
                            reflection::spawn(handles.clone(), setup.config.fallback_stun.clone(), net_tx.clone());
                        }
                    }
                    AccountEvent::Offline => rv.offline(i),
                    AccountEvent::Stanza(st) if !bridge::fits(&mut node.limits, &st) => {}
                    AccountEvent::Stanza(st) => match *st {
                        Stanza::Presence(p) => rv.presence(i, p, now),
                        Stanza::Iq(iq) => {
                            let cx = bridge::IqCx { rt: &runtime, rv: &mut rv, handles: &handles, limits: &mut node.limits };
                            if let Some(iq) = bridge::jingle_iq(cx, i, iq, now) {
                                rv.iq_request(i, iq, now);
                            }
                        }
                        Stanza::Message(m) => node.rings.message(&setup.secret, &mut rv, i, &m),
                    },
                }
            }
            Some((jid, key)) = keys_seen.recv() => {
                rv.check_key(&jid, key, KeySource::NodeKeys);
            }
            Some((token, result)) = iq_results.recv() => rv.iq_result(token, result, Instant::now().into_std()),
            Some(report) = net_rx.recv() => {
                runtime.hint(bridge::hint(&report)).await;
                node.status.net = Some(report);
            }
            Some((req, reply)) = control_rx.recv() => match req {
                Request::Stop => {
                    let _ = reply.send(Response::ok(None));
                    break;
                }
                Request::Ping { target } => {
                    let rt = runtime.clone();
                    tokio::spawn(async move {
                        let answer = match rt.ping(target).await {
                            Ok(report) => Response::ok(serde_json::to_value(report).ok()),
                            Err(e) => Response::error(&e),
                        };
                        let _ = reply.send(answer);
                    });
                }
                Request::Status => {
                    let overlay = runtime.status().await;
                    let _ = reply.send(node.status(&handles, &rv, overlay));
                }
                Request::Trust { jid, fingerprint, keep_old } => {
                    let _ = reply.send(trust(&mut rv, &jid, fingerprint.as_deref(), keep_old));
                }
                ring_request => {
                    let cx = rings::Cx { setup: &setup, rv: &mut rv, runtime: &runtime, handles: &handles, keys_seen: &keys_seen_tx };
                    node.rings.handle(ring_request, reply, cx).await;
                }
            },
            () = sleep_until(wake) => rv.handle_timeout(Instant::now().into_std()),
        }
        while let Some(out) = rv.poll_output() {
            match out {
                Output::Send { account, stanza } => {
                    let _ = handles[account].send(stanza).await;
                }
                Output::Iq {
                    account,
                    iq,
                    timeout,
                    token,
                } => {
                    let (h, tx) = (handles[account].clone(), iq_tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send((token, h.iq(iq, timeout).await));
                    });
                }
                Output::Event(ev) => {
                    bridge::friend_event(&runtime, &handles, &ev).await;
                    node.record(ev);
                }
            }
        }
        if let Some(pins) = rv.pins_to_save() {
            if let Err(e) = pins.save(&setup.pins_file) {
                tracing::error!(%e, "pinned keys not saved; they are kept in memory until the node stops");
            }
            runtime.set_friend_keys(pins.fingerprints()).await;
        }
    }
    tracing::info!("shutting down: leaving the rings, closing every account");
    runtime.shutdown().await;
    futures::future::join_all(handles.iter().map(|h| h.close(CLOSE_TIMEOUT))).await;
    server.abort();
    apps.abort();
    renewing.abort();
    let _ = std::fs::remove_file(&setup.control_socket);
    let _ = std::fs::remove_file(&app_socket);
    Ok(())
}

/// Starts the services on every ring and serves local apps on `path`.
async fn start_services(
    secret: &NodeSecret,
    runtime: &RuntimeHandle,
    path: &std::path::Path,
) -> Result<(tokio::task::JoinHandle<()>, crate::services::Services), NodeError> {
    let services = crate::services::Services::spawn(secret, runtime.clone()).await?;
    let listener =
        crate::services::app_socket::bind(path).map_err(|source| NodeError::AppSocket {
            path: path.into(),
            source,
        })?;
    let serving = tokio::spawn(crate::services::app_socket::serve(
        listener,
        services.clone(),
    ));
    Ok((serving, services))
}

async fn sleep_until(when: Option<std::time::Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

struct Node {
    status: NodeStatus,
    friends: FriendTable,
    netcheck_started: bool,
    rings: Rings,
    limits: Limits,
}

/// `chamber trust`: accepts the key a friend offers now.
fn trust(rv: &mut Rendezvous, jid: &str, expected: Option<&str>, keep_old: bool) -> Response {
    let Ok(bare) = jid.parse::<tokio_xmpp::jid::BareJid>() else {
        return Response::error(&format!("`{jid}` is not a bare JID (user@server)"));
    };
    match rv.trust(&bare, expected, keep_old, Instant::now().into_std()) {
        Ok(a) => Response::ok(serde_json::to_value(a).ok()),
        Err(e) => Response::error(&e.to_string()),
    }
}

impl Node {
    fn record(&mut self, ev: FriendEvent) {
        match ev {
            FriendEvent::Up(f) => {
                let key = (f.ring.clone(), f.jid.clone(), f.via.clone());
                self.friends.insert(
                    key,
                    FriendStatus {
                        friend: f,
                        since_ms: unix_ms(),
                    },
                );
            }
            FriendEvent::Down { friend: f, .. } => {
                self.friends.remove(&(f.ring, f.jid, f.via));
            }
        }
    }

    fn status(
        &self,
        handles: &[AccountHandle],
        rv: &Rendezvous,
        overlay: Vec<crate::runtime::RingView>,
    ) -> Response {
        let mut s = self.status.clone();
        s.accounts = handles.iter().map(AccountHandle::status).collect();
        s.invites = self.rings.invites();
        s.pinned_key_warnings = rv.key_warnings();
        s.limits = self.limits.status.clone();
        s.limits.pinned_key_refusals = rv.key_refusals();
        s.rings = rv
            .rings()
            .iter()
            .map(|r| RingStatus {
                name: r.name.clone(),
                id: r.id.to_hex(),
                friends: self
                    .friends
                    .values()
                    .filter(|f| f.friend.ring == r.name)
                    .cloned()
                    .collect(),
                overlay: overlay.iter().find(|o| o.name == r.name).cloned(),
            })
            .collect();
        match serde_json::to_value(&s) {
            Ok(v) => Response::ok(Some(v)),
            Err(e) => Response::error(&e.to_string()),
        }
    }
}

/// Asks the daemon at `socket` for its status.
pub async fn query_status(socket: &std::path::Path) -> Result<NodeStatus, control::ControlError> {
    let r = control::request(socket, &Request::Status, Duration::from_secs(5)).await?;
    let bad = |reason: String| control::ControlError::BadAnswer {
        path: socket.into(),
        reason,
    };
    let value = r.status.ok_or_else(|| bad(r.error.unwrap_or_default()))?;
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}
