//! Helpers for the link lab tests (included with `#[path]`): a friend's node reduced to what a
//! link needs — a running account, its STUN/TURN offers, a [`Linker`] fed by the account's
//! Jingle IQs — run inside a site's namespace.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chamber::account::{AccountConfig, AccountEvent, AccountHandle, LinkOptions};
use chamber::link::{
    IceServer, Identity, Incoming, Link, LinkError, Linker, LinkerConfig, PathHint, PathInfo,
};
use chamber::signal::xmpp::{self, XmppTransport};
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::FullJid;
use tokio_xmpp::parsers::iq::Iq;
use xmpp_ext::record::{Capabilities, NodeRecord};
use xmpp_ext::{NodeSecret, RingSecret};

/// Which TURN a friend may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Whatever the server offers.
    Offered,
    /// None: STUN only (a server or config that withholds TURN).
    Withheld,
}

/// Logs to stderr as `RUST_LOG` says (once per process).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A friend's keys; `seed` makes them deterministic.
pub fn secret(seed: u8) -> NodeSecret {
    let mut b = [seed; 64];
    b[0] = 0x5a;
    NodeSecret::from_bytes(&b)
}

/// The ring every lab friend is in.
pub fn ring() -> RingSecret {
    RingSecret::from_bytes([0x42; 32])
}

/// A running friend.
pub struct Friend {
    pub jid: FullJid,
    pub account: AccountHandle,
    pub linker: Linker<FullJid>,
    pub incoming: Incoming<FullJid>,
    pub servers: Vec<IceServer>,
}

/// Logs in, reads XEP-0215, starts a linker whose record is signed by `record_secret` and
/// whose Noise key is `noise_secret`'s (equal for an honest friend).
pub async fn start(
    cfg: AccountConfig,
    record_secret: &NodeSecret,
    noise_secret: &NodeSecret,
    turn: Turn,
    linker_cfg: LinkerConfig,
) -> Friend {
    let opts = LinkOptions::default();
    start_with(cfg, record_secret, noise_secret, turn, linker_cfg, opts).await
}

/// [`start`] with the account's connection tuning.
pub async fn start_with(
    cfg: AccountConfig,
    record_secret: &NodeSecret,
    noise_secret: &NodeSecret,
    turn: Turn,
    mut linker_cfg: LinkerConfig,
    opts: LinkOptions,
) -> Friend {
    init_tracing();
    let (ev_tx, mut ev_rx) = mpsc::channel(256);
    let account = AccountHandle::spawn(0, &cfg, opts, ev_tx).unwrap_or_else(|e| panic!("{e}"));
    let jid = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some((_, ev)) = ev_rx.recv().await {
            if let AccountEvent::Online { bound_jid, .. } = ev {
                return bound_jid;
            }
        }
        panic!("account task ended")
    })
    .await
    .expect("online within 20 s");
    let services = services(&account).await;
    let mut servers = IceServer::from_offers(&services);
    if turn == Turn::Withheld {
        servers.retain(|s| s.turn.is_none());
    }
    linker_cfg.servers = servers.clone();
    let record = NodeRecord::new(record_secret, ring().ring_id(), Capabilities::empty(), 1);
    let identity = Identity::new(noise_secret, record, &ring());
    let ring_id = ring().ring_id();
    let policy: chamber::link::Policy<FullJid> = Arc::new(move |_, r: &NodeRecord| {
        if r.ring() == ring_id {
            Ok(())
        } else {
            Err("not in our ring".into())
        }
    });
    let transport = Arc::new(XmppTransport::new(account.clone(), Duration::from_secs(8)));
    let (linker, incoming) = Linker::spawn(jid.clone(), identity, transport, linker_cfg, policy);
    // Route Jingle IQs from the account to the linker, answering each.
    let (l, a) = (linker.clone(), account.clone());
    tokio::spawn(async move {
        while let Some((_, ev)) = ev_rx.recv().await {
            let AccountEvent::Stanza(st) = ev else {
                continue;
            };
            // `Borrow` reads the stanza whether the event boxes it or not.
            let Stanza::Iq(iq) = std::borrow::Borrow::<Stanza>::borrow(&st) else {
                continue;
            };
            let iq = iq.clone();
            match xmpp::incoming(&iq) {
                Some(Ok((from, j))) => {
                    let (l, a, id) = (l.clone(), a.clone(), iq.id().to_owned());
                    tokio::spawn(async move {
                        let r = l.incoming(from.clone(), j).await;
                        let _ = a.send(Stanza::Iq(xmpp::reply(&from, &id, &r))).await;
                    });
                }
                Some(Err(reply)) => {
                    let _ = a.send(Stanza::Iq(reply)).await;
                }
                None => {}
            }
        }
    });
    Friend {
        jid,
        account,
        linker,
        incoming,
        servers,
    }
}

async fn services(account: &AccountHandle) -> Vec<xmpp_ext::extdisco::ExternalService> {
    let domain = account.jid().domain().to_string();
    let iq = Iq::Get {
        from: None,
        to: Some(domain.parse().expect("domain")),
        id: String::new(),
        payload: xmpp_ext::extdisco::services_request(None),
    };
    match account.iq(iq, Duration::from_secs(5)).await {
        Ok(Iq::Result {
            payload: Some(p), ..
        }) => xmpp_ext::extdisco::parse_response(&p).unwrap_or_default(),
        other => panic!("no XEP-0215 answer: {other:?}"),
    }
}

/// How one side's attempt ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Path kind, or the error.
    pub result: Result<chamber::link::PathInfo, String>,
    /// From starting the offer (or receiving it) to the first authenticated datagram.
    pub setup: Duration,
    /// Whether a datagram crossed both ways.
    pub echoed: bool,
}

/// Initiator: offers, waits for the link, sends a datagram and waits for the echo.
pub async fn offer_and_ping(f: &Friend, peer: FullJid) -> (Outcome, Option<Link>) {
    ping_over(f.linker.clone(), peer).await
}

/// [`offer_and_ping`] with a linker of its own, for a spawned task.
pub async fn ping_over(linker: Linker<FullJid>, peer: FullJid) -> (Outcome, Option<Link>) {
    let t0 = Instant::now();
    match linker.connect(vec![peer]).await {
        Ok(mut link) => {
            let setup = t0.elapsed();
            let mut echoed = false;
            for _ in 0..20 {
                let _ = link.send(b"ping").await;
                if let Ok(Some(d)) =
                    tokio::time::timeout(Duration::from_millis(250), link.recv()).await
                {
                    echoed = d == b"pong";
                    break;
                }
            }
            // Read after the echo: a relay candidate trickled after the checks relabels a
            // peer-reflexive path as TURN.
            let result = link
                .status()
                .path
                .ok_or_else(|| "up without a path".to_string());
            (
                Outcome {
                    result,
                    setup,
                    echoed,
                },
                Some(link),
            )
        }
        Err(e) => (
            Outcome {
                result: Err(describe(&e)),
                setup: t0.elapsed(),
                echoed: false,
            },
            None,
        ),
    }
}

/// Responder: takes the next incoming link and echoes `ping` with `pong` in the background.
pub async fn answer_and_echo(f: &mut Friend) -> Result<Link, String> {
    match tokio::time::timeout(Duration::from_secs(60), f.incoming.recv()).await {
        Ok(Some(Ok((_, link)))) => Ok(link),
        Ok(Some(Err((_, e)))) => Err(describe(&e)),
        Ok(None) => Err("linker ended".into()),
        Err(_) => Err("no incoming link within 60 s".into()),
    }
}

/// Echoes datagrams on `link` until it ends.
pub fn echo(link: Link) -> tokio::task::JoinHandle<Link> {
    echo_reporting(link, None)
}

/// The paths of links a responder echoes on, by peer.
pub type Paths = Arc<std::sync::Mutex<std::collections::HashMap<String, PathInfo>>>;

/// Echoes datagrams on `link` until it ends, noting its path in `paths` after each echo.
pub fn echo_reporting(mut link: Link, paths: Option<Paths>) -> tokio::task::JoinHandle<Link> {
    tokio::spawn(async move {
        while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(5), link.recv()).await {
            if d == b"ping" {
                let _ = link.send(b"pong").await;
                if let (Some(paths), Some(p)) = (&paths, link.status().path) {
                    let peer = link.peer().to_string();
                    paths
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(peer, p);
                }
            } else if d == b"bye" {
                break;
            }
        }
        link
    })
}

/// Echoes `ping` with `pong` on `link` until it ends or `bye` comes, publishing its status
/// every 50 ms (counters move without datagrams, e.g. on a dropped replay).
pub fn echo_watched(
    mut link: Link,
) -> (
    tokio::task::JoinHandle<Link>,
    tokio::sync::watch::Receiver<chamber::link::LinkStatus>,
) {
    let (tx, rx) = tokio::sync::watch::channel(link.status());
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                d = link.recv() => match d {
                    Some(d) if d == b"ping" => {
                        let _ = link.send(b"pong").await;
                    }
                    Some(d) if d == b"bye" => break,
                    Some(_) => {}
                    None => break,
                },
                _ = tick.tick() => {
                    let _ = tx.send(link.status());
                }
            }
        }
        let _ = tx.send(link.status());
        link
    });
    (task, rx)
}

/// Incoming links of a friend, handed to the test thread as they come.
pub fn forward_incoming(
    rt: &tokio::runtime::Runtime,
    mut incoming: Incoming<FullJid>,
) -> std::sync::mpsc::Receiver<Result<Link, LinkError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        while let Some(r) = incoming.recv().await {
            if tx.send(r.map(|(_, l)| l).map_err(|(_, e)| e)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends `ping` until `pong` comes back (at most `tries` times, 250 ms apart).
pub async fn ping(link: &mut Link, tries: u32) -> bool {
    for _ in 0..tries {
        let _ = link.send(b"ping").await;
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(250), link.recv()).await
            && d == b"pong"
        {
            return true;
        }
    }
    false
}

/// A short name for a link error in the matrix.
pub fn describe(e: &LinkError) -> String {
    match e {
        LinkError::NoDirectPath { .. } => "no direct path".into(),
        LinkError::IceFailed { .. } => "no path (TURN tried)".into(),
        LinkError::Timeout { secs, .. } => format!("timeout ({secs} s)"),
        other => other.to_string(),
    }
}

/// A tokio runtime whose workers live in `ns`: whatever is spawned on it opens its sockets
/// there. Drive it with [`on`], never with `block_on` (that polls on the calling thread).
pub fn runtime_in(ns: &chamber_lab::Netns) -> tokio::runtime::Runtime {
    ns.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
    .expect("enter the namespace")
}

/// Runs `f` on `rt`'s workers and waits for it.
pub fn on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(rt.spawn(f)).expect("the task ran")
}

/// The default linker settings of the lab tests.
pub fn lab_linker(hint: PathHint) -> LinkerConfig {
    LinkerConfig {
        hint,
        setup_timeout: Duration::from_secs(25),
        ..LinkerConfig::default()
    }
}
