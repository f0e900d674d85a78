//! The reconnecting stream under an account. tokio-xmpp's `StanzaStream` keeps XEP-0198 state
//! and resumes or rebinds by itself, but its own reconnect loop retries forever at fixed
//! delays and hides why it fails. We give it our own loop: every attempt is authenticated by
//! [`authenticate`] under the login deadline, delays follow [`Backoff`] (reset once a connection
//! works, saturated when the server refuses the password or certificate), and each attempt is
//! reported to the account task as a [`Report`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::stanzastream::{Connection, StanzaStream};
use tokio_xmpp::xmlstream::Timeouts;
use zeroize::Zeroizing;

use super::auth::authenticate;
use super::backoff::Backoff;
use super::{Connector, LoginError};

/// What the reconnect loop tells the account task.
#[derive(Debug)]
pub(crate) enum Report {
    /// Waiting before the next attempt.
    Waiting { attempt: u32, delay: Duration },
    /// An attempt authenticated; the stream will now resume or bind.
    Authenticated { mechanism: String },
    /// An attempt failed.
    Failed(LoginError),
}

/// What every reconnect attempt needs, shared with the stream's reconnect callback.
pub(crate) struct Dialer {
    pub(crate) connector: Connector,
    pub(crate) jid: BareJid,
    pub(crate) password: Zeroizing<String>,
    pub(crate) timeouts: Timeouts,
    pub(crate) login_timeout: Duration,
    pub(crate) backoff: Mutex<Backoff>,
    pub(crate) closing: AtomicBool,
    pub(crate) reports: mpsc::UnboundedSender<Report>,
    /// A connection was handed to the stream and has not come online (bound or resumed) yet.
    pub(crate) negotiating: AtomicBool,
    /// The last connection handed over had stream management hidden (see [`stanza_stream`]).
    pub(crate) plain_last: AtomicBool,
}

impl Dialer {
    /// One attempt under the login deadline.
    pub(crate) async fn attempt(&self) -> Result<(Connection, String), LoginError> {
        let login = authenticate(&self.connector, &self.jid, &self.password, self.timeouts);
        match tokio::time::timeout(self.login_timeout, login).await {
            Ok(r) => r,
            Err(_) => Err(LoginError::Timeout {
                jid: self.jid.to_string(),
                secs: self.login_timeout.as_secs(),
                last: self
                    .connector
                    .take_failure()
                    .map(|f| format!("{f:?}"))
                    .unwrap_or_else(|| "no answer".into()),
            }),
        }
    }

    /// Retries until an attempt works (and hands the connection to the stream), or the
    /// account closes. `now`: the first attempt goes without waiting.
    pub(crate) async fn connect_until_done(&self, mut now: bool) -> Option<(Connection, String)> {
        loop {
            if self.closing.load(Ordering::Relaxed) {
                return None;
            }
            if !now {
                let (attempt, delay) = {
                    let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                    let delay = b.next_delay(&mut rand::thread_rng());
                    (b.attempts(), delay)
                };
                let _ = self.reports.send(Report::Waiting { attempt, delay });
                tokio::time::sleep(delay).await;
            }
            now = false;
            if self.closing.load(Ordering::Relaxed) {
                return None;
            }
            match self.attempt().await {
                Ok((conn, mechanism)) => {
                    let _ = self.reports.send(Report::Authenticated {
                        mechanism: mechanism.clone(),
                    });
                    return Some((conn, mechanism));
                }
                Err(e) => {
                    if e.is_permanent() {
                        self.backoff
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .saturate();
                    }
                    let _ = self.reports.send(Report::Failed(e));
                }
            }
        }
    }

    /// The stream is online again (bound or resumed): back to short delays.
    pub(crate) fn online(&self) {
        self.negotiating.store(false, Ordering::Relaxed);
        self.plain_last.store(false, Ordering::Relaxed);
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset();
    }
}

/// A stanza stream whose first connection is `first` and whose reconnects go through `dialer`.
///
/// A connection lost after login but before it came online failed in tokio-xmpp's resume or
/// bind. The known cause: a restarted ejabberd answers a resumption with `<failed/>` without
/// `h`, which xmpp-parsers 0.23 cannot parse, so tokio-xmpp drops the stream and tries to
/// resume again, forever. The next connection then hides the server's stream management
/// feature, which makes tokio-xmpp drop its old session state and bind afresh (that session
/// goes without XEP-0198; the next full login has it again). The first such retry goes at
/// once: the server is up, and we know what to change.
pub(crate) fn stanza_stream(dialer: Arc<Dialer>, first: Connection) -> StanzaStream {
    let mut first = Some(first);
    let reconnect = move |_: Option<String>, mut slot: oneshot::Sender<Connection>| {
        if let Some(conn) = first.take() {
            dialer.negotiating.store(true, Ordering::Relaxed);
            let _ = slot.send(conn);
            return;
        }
        let dialer = dialer.clone();
        tokio::spawn(async move {
            let failed = dialer.negotiating.swap(false, Ordering::Relaxed);
            let again = failed && dialer.plain_last.load(Ordering::Relaxed);
            let conn = tokio::select! {
                conn = dialer.connect_until_done(failed && !again) => conn,
                () = slot.closed() => return,
            };
            match conn {
                Some((mut conn, _)) => {
                    if failed {
                        tracing::warn!(jid = %dialer.jid, "the last login failed while resuming or binding the session; logging in afresh without stream management (XEP-0198)");
                        conn.features.stream_management = None;
                    }
                    dialer.plain_last.store(failed, Ordering::Relaxed);
                    dialer.negotiating.store(true, Ordering::Relaxed);
                    let _ = slot.send(conn);
                }
                // Closing: keep the slot until the stream goes away, because a dropped slot
                // makes tokio-xmpp's worker panic ("unable to handle reconnect").
                None => slot.closed().await,
            }
        });
    };
    StanzaStream::new(Box::new(reconnect), 64)
}
