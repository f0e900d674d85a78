//! One task per account owns its stanza stream and is fed by a channel ([`AccountHandle`]);
//! nothing else touches the stream, which avoids tokio-xmpp's lost wake-up with a split client
//! (STACK.md, trap 8). The task logs in, keeps the connection alive (XEP-0199 pings, the stream's
//! own timeouts), reconnects through [`link`](super::link), answers the server's pings, matches
//! IQ answers, publishes an [`AccountStatus`] and hands every other stanza to the node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::{ns, ping::Ping};
use tokio_xmpp::stanzastream::{Connection, Event, StanzaStream, StreamEvent};
use zeroize::Zeroizing;

use super::backoff::Backoff;
use super::iq::{IqError, IqTracker};
use super::link::{self, Dialer, Report};
use super::status::{AccountStatus, LinkOptions, LinkState, unix_ms};
use super::{AccountConfig, Connector, LoginError, Target, tls};

/// What an account tells the node.
#[derive(Debug)]
pub enum AccountEvent {
    /// A session is up. `resumed`: XEP-0198 restored the previous one, so presence and roster
    /// are as they were; otherwise everything must be sent again.
    Online {
        /// Our full JID.
        bound_jid: FullJid,
        /// Whether the old session was resumed.
        resumed: bool,
    },
    /// The connection is gone for now (it may resume).
    Offline,
    /// A stanza for the node (IQ answers and server pings are handled here).
    Stanza(Box<Stanza>),
}

enum Command {
    Send(Box<Stanza>),
    Iq {
        iq: Box<Iq>,
        timeout: Duration,
        reply: oneshot::Sender<Result<Iq, IqError>>,
    },
    Close(oneshot::Sender<()>),
}

/// The node's handle on a running account.
#[derive(Clone, Debug)]
pub struct AccountHandle {
    jid: BareJid,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<AccountStatus>,
}

impl AccountHandle {
    /// Starts the account's task; its events go to `events`, tagged with `index`. Fails only on
    /// settings that can never work (a bad JID, an unreadable CA file).
    pub fn spawn(
        index: usize,
        cfg: &AccountConfig,
        opts: LinkOptions,
        events: mpsc::Sender<(usize, AccountEvent)>,
    ) -> Result<AccountHandle, LoginError> {
        let jid: BareJid = cfg.jid.parse().map_err(|e| {
            LoginError::Config(format!("`{}` is not a valid bare JID: {e}", cfg.jid))
        })?;
        if jid.node().is_none() {
            return Err(LoginError::Config(format!(
                "`{}` has no user part (write user@server)",
                cfg.jid
            )));
        }
        let target = match &cfg.server {
            Some(addr) => Target::Addr(addr.clone()),
            None => Target::Srv(jid.domain().to_string()),
        };
        let connector =
            Connector::new(target, cfg.tls, tls::client_config(cfg.ca_file.as_deref())?);
        let status = AccountStatus::new(jid.to_string(), connector.target().to_string(), cfg.tls);
        let (status_tx, status_rx) = watch::channel(status);
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let dialer = Arc::new(Dialer {
            connector,
            jid: jid.clone(),
            password: Zeroizing::new(cfg.password.clone()),
            timeouts: opts.timeouts,
            login_timeout: cfg.login_timeout,
            backoff: std::sync::Mutex::new(Backoff::new(opts.backoff_base, opts.backoff_max)),
            closing: AtomicBool::new(false),
            reports: reports_tx,
            negotiating: AtomicBool::new(false),
            plain_last: AtomicBool::new(false),
        });
        let (commands, cmd_rx) = mpsc::channel(256);
        let task = Task {
            index,
            jid: jid.clone(),
            opts,
            dialer,
            status: status_tx,
            events,
            tracker: IqTracker::default(),
            online: false,
        };
        tokio::spawn(task.run(cmd_rx, reports));
        Ok(AccountHandle {
            jid,
            commands,
            status: status_rx,
        })
    }

    /// The account's bare JID.
    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// The current status.
    pub fn status(&self) -> AccountStatus {
        self.status.borrow().clone()
    }

    /// Queues a stanza (sent once online; XEP-0198 re-sends what a lost connection dropped).
    pub async fn send(&self, stanza: Stanza) -> Result<(), IqError> {
        self.commands
            .send(Command::Send(Box::new(stanza)))
            .await
            .map_err(|_| IqError::Closed)
    }

    /// Sends an IQ request (the id is set here) and waits for its answer.
    pub async fn iq(&self, iq: Iq, timeout: Duration) -> Result<Iq, IqError> {
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Iq {
            iq: Box::new(iq),
            timeout,
            reply,
        };
        self.commands.send(cmd).await.map_err(|_| IqError::Closed)?;
        answer.await.unwrap_or(Err(IqError::Closed))
    }

    /// Ends the stream cleanly (the server then tells every contact we left: no ghost) and
    /// waits, at most `timeout`, for the task to finish.
    pub async fn close(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

struct Task {
    index: usize,
    jid: BareJid,
    opts: LinkOptions,
    dialer: Arc<Dialer>,
    status: watch::Sender<AccountStatus>,
    events: mpsc::Sender<(usize, AccountEvent)>,
    tracker: IqTracker,
    online: bool,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        let started = Instant::now();
        let first = tokio::select! {
            c = self.first_connection() => c,
            close = closed(&mut commands) => {
                self.finish(None, close).await;
                return;
            }
        };
        self.status
            .send_modify(|s| s.login_ms = Some(started.elapsed().as_millis() as u64));
        let mut stream = link::stanza_stream(self.dialer.clone(), first);
        let mut ping_tick = tokio::time::interval(self.opts.ping_interval);
        ping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(Duration::from_millis(500));
        let mut ping: Option<(Instant, oneshot::Receiver<Result<Iq, IqError>>)> = None;
        let close = loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => break None,
                    Some(Command::Close(done)) => break Some(done),
                    Some(Command::Send(st)) => {
                        stream.send(st).await;
                    }
                    Some(Command::Iq { iq, timeout, reply }) => {
                        self.send_iq(&stream, *iq, timeout, reply).await;
                    }
                },
                ev = stream.next() => match ev {
                    Some(ev) => self.handle(&stream, ev).await,
                    None => break None,
                },
                Some(report) = reports.recv() => self.report(report),
                _ = ping_tick.tick(), if self.online && ping.is_none() => {
                    let (reply, rx) = oneshot::channel();
                    let iq = Iq::from_get(String::new(), Ping)
                        .with_to(Jid::from(self.jid.domain().to_owned()));
                    self.send_iq(&stream, iq, self.opts.ping_timeout, reply).await;
                    ping = Some((Instant::now(), rx));
                }
                answer = async { ping.as_mut().map(|p| &mut p.1).expect("guarded").await }, if ping.is_some() => {
                    let sent = ping.take().map(|p| p.0).unwrap_or_else(Instant::now);
                    match answer {
                        Ok(Ok(_)) => self.status.send_modify(|s| s.ping_rtt_ms = Some(sent.elapsed().as_millis() as u64)),
                        _ => tracing::warn!(jid = %self.jid, "the server did not answer a ping; the stream's timeouts will reconnect if it is gone"),
                    }
                }
                _ = sweep.tick() => self.tracker.expire(Instant::now()),
            }
        };
        self.finish(Some(stream), close).await;
    }

    /// The first login, retried with backoff: a node started while offline comes up later.
    async fn first_connection(&mut self) -> Connection {
        loop {
            self.status.send_modify(|s| s.attempts += 1);
            match self.dialer.attempt().await {
                Ok((conn, mechanism)) => {
                    self.status.send_modify(|s| {
                        s.mechanism = Some(mechanism);
                        s.last_error = None;
                        s.error_is_permanent = false;
                    });
                    return conn;
                }
                Err(e) => {
                    let delay = {
                        let mut b = self
                            .dialer
                            .backoff
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        if e.is_permanent() {
                            b.saturate();
                        }
                        b.next_delay(&mut rand::thread_rng())
                    };
                    tracing::error!(jid = %self.jid, retry_in = ?delay, "{e}");
                    self.status.send_modify(|s| {
                        s.state = LinkState::Retrying;
                        s.error_is_permanent = e.is_permanent();
                        s.last_error = Some(e.to_string());
                    });
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn send_iq(
        &mut self,
        stream: &StanzaStream,
        mut iq: Iq,
        timeout: Duration,
        reply: oneshot::Sender<Result<Iq, IqError>>,
    ) {
        let id = self.tracker.next_id();
        *iq.id_mut() = id.clone();
        self.tracker.insert(id, iq.to().cloned(), timeout, reply);
        stream.send(Box::new(iq.into())).await;
    }

    async fn handle(&mut self, stream: &StanzaStream, ev: Event) {
        match ev {
            Event::Stanza(Stanza::Iq(iq)) => {
                let Some(iq) = self.tracker.answer(iq, Some(&self.jid)) else {
                    return;
                };
                if let Iq::Get {
                    from, id, payload, ..
                } = &iq
                    && payload.is("ping", ns::PING)
                    && self.is_own_side(from.as_ref())
                {
                    let pong = Iq::Result {
                        from: None,
                        to: from.clone(),
                        id: id.clone(),
                        payload: None,
                    };
                    stream.send(Box::new(pong.into())).await;
                    return;
                }
                self.forward(AccountEvent::Stanza(Box::new(Stanza::Iq(iq))))
                    .await;
            }
            Event::Stanza(st) => self.forward(AccountEvent::Stanza(Box::new(st))).await,
            Event::Stream(StreamEvent::Reset {
                bound_jid,
                features,
            }) => {
                let Ok(full) = bound_jid.try_into_full() else {
                    tracing::error!(jid = %self.jid, "the server bound no resource");
                    return;
                };
                let first = self.status.borrow().online_since_ms.is_none();
                self.dialer.online();
                self.online = true;
                self.status.send_modify(|s| {
                    s.state = LinkState::Online;
                    s.bound_jid = Some(full.to_string());
                    s.stream_management = features.stream_management.is_some();
                    s.online_since_ms = Some(unix_ms());
                    s.attempts = 0;
                    s.last_error = None;
                    s.error_is_permanent = false;
                    if !first {
                        s.reconnects += 1;
                    }
                });
                tracing::info!(jid = %full, xep0198 = features.stream_management.is_some(), "online");
                self.forward(AccountEvent::Online {
                    bound_jid: full,
                    resumed: false,
                })
                .await;
            }
            Event::Stream(StreamEvent::Resumed) => {
                self.dialer.online();
                self.online = true;
                let bound = self.status.borrow().bound_jid.clone();
                self.status.send_modify(|s| {
                    s.state = LinkState::Online;
                    s.resumptions += 1;
                    s.attempts = 0;
                    s.last_error = None;
                });
                tracing::info!(jid = %self.jid, "stream resumed (XEP-0198)");
                if let Some(full) = bound.and_then(|b| b.parse::<FullJid>().ok()) {
                    self.forward(AccountEvent::Online {
                        bound_jid: full,
                        resumed: true,
                    })
                    .await;
                }
            }
            Event::Stream(StreamEvent::Suspended) => {
                self.online = false;
                self.status.send_modify(|s| s.state = LinkState::Suspended);
                tracing::warn!(jid = %self.jid, "connection lost; resuming or reconnecting");
                self.forward(AccountEvent::Offline).await;
            }
        }
    }

    fn report(&mut self, report: Report) {
        match report {
            Report::Waiting { attempt, delay } => {
                tracing::info!(jid = %self.jid, attempt, ?delay, "reconnecting");
                self.status.send_modify(|s| s.attempts = attempt);
            }
            Report::Authenticated { mechanism } => {
                self.status.send_modify(|s| s.mechanism = Some(mechanism));
            }
            Report::Failed(e) => {
                tracing::warn!(jid = %self.jid, "{e}");
                self.status.send_modify(|s| {
                    s.state = LinkState::Retrying;
                    s.error_is_permanent = e.is_permanent();
                    s.last_error = Some(e.to_string());
                });
            }
        }
    }

    /// Our server (no `from`, its domain) or our own account may ping us.
    fn is_own_side(&self, from: Option<&Jid>) -> bool {
        from.is_none_or(|f| f.as_str() == self.jid.domain().as_str() || f.to_bare() == self.jid)
    }

    async fn forward(&self, ev: AccountEvent) {
        let _ = self.events.send((self.index, ev)).await;
    }

    async fn finish(&mut self, stream: Option<StanzaStream>, done: Option<oneshot::Sender<()>>) {
        self.dialer.closing.store(true, Ordering::Relaxed);
        if let Some(stream) = stream {
            if self.online {
                // A clean stream end: the server broadcasts our unavailable presence at once and
                // does not keep the session for resumption.
                if tokio::time::timeout(Duration::from_secs(5), stream.close())
                    .await
                    .is_err()
                {
                    tracing::warn!(jid = %self.jid, "the stream did not close within 5 s");
                }
            } else {
                drop(stream);
            }
        }
        self.tracker
            .expire(Instant::now() + Duration::from_secs(86_400));
        self.online = false;
        self.status.send_modify(|s| s.state = LinkState::Closed);
        tracing::info!(jid = %self.jid, "closed");
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// Waits for a close command (or the handle's end), dropping anything else: before the first
/// login there is no stream to send to.
async fn closed(commands: &mut mpsc::Receiver<Command>) -> Option<oneshot::Sender<()>> {
    loop {
        match commands.recv().await {
            None => return None,
            Some(Command::Close(done)) => return Some(done),
            Some(Command::Iq { reply, .. }) => {
                let _ = reply.send(Err(IqError::Closed));
            }
            Some(Command::Send(_)) => {}
        }
    }
}
