//! One logged-in XMPP account. A short probe login runs first, because tokio-xmpp's own client
//! retries forever and swallows why it fails: the probe turns a wrong password, an untrusted
//! certificate or an unreachable server into a [`LoginError`] within the deadline, and tells which
//! SASL mechanism the server accepted. The long-lived client starts only after it succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::collections::VecDeque;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::stanzastream::{Event, StanzaStage, StanzaState, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;

use super::connector::{ConnectFailure, Connector, Target, TlsMode};
use super::iq::{IqError, IqTracker};
use super::{LoginError, auth, tls};

/// Stanzas read while waiting for an IQ answer, kept for [`Session::next`]; beyond this the
/// oldest are dropped (a short session that never reads has no use for them).
const QUEUED_MAX: usize = 256;

/// How to reach and log into one account.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AccountConfig {
    /// The bare JID.
    pub jid: String,
    /// The password (held in memory only; stored in the keystore, never in the config file).
    #[serde(skip_serializing)]
    pub password: String,
    /// `host:port` to dial instead of the domain's SRV records.
    #[serde(default)]
    pub server: Option<String>,
    /// STARTTLS or direct TLS.
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// Trust only this CA (PEM) instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long a login may take before it fails.
    #[serde(default = "default_login_timeout", with = "secs")]
    pub login_timeout: Duration,
}

fn default_tls() -> TlsMode {
    TlsMode::StartTls
}

fn default_login_timeout() -> Duration {
    Duration::from_secs(15)
}

mod secs {
    use std::time::Duration;
    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_secs)
    }
}

impl AccountConfig {
    /// An account at `jid` with default settings.
    pub fn new(jid: impl Into<String>, password: impl Into<String>) -> AccountConfig {
        AccountConfig {
            jid: jid.into(),
            password: password.into(),
            server: None,
            tls: default_tls(),
            ca_file: None,
            login_timeout: default_login_timeout(),
        }
    }
}

/// What a login established, for `chamber status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionInfo {
    /// The full JID the server bound.
    pub bound_jid: String,
    /// The SASL mechanism used.
    pub mechanism: String,
    /// Where we connected.
    pub server: String,
    /// How TLS started.
    pub tls: TlsMode,
    /// How long the login took, in milliseconds.
    pub login_ms: u64,
}

/// A logged-in account, for short jobs (a login check, `netcheck`, lab tests); the daemon's
/// long-lived accounts are [`super::AccountHandle`]s.
///
/// It owns tokio-xmpp's stanza stream directly, read and written from one task. tokio-xmpp's
/// `Client` splits that stream behind a lock whose reader returns `Pending` without a waker when
/// the writer holds it, so an answer sent while we were sending could sit unread for good (seen
/// as XEP-0215 queries "unanswered" for 12 s while the server had answered in 2 ms).
pub struct Session {
    stream: StanzaStream,
    info: SessionInfo,
    jid: BareJid,
    tracker: IqTracker,
    queued: VecDeque<Stanza>,
}

impl Session {
    /// Logs in, or explains within `cfg.login_timeout` why not.
    pub async fn login(cfg: &AccountConfig) -> Result<Session, LoginError> {
        let start = Instant::now();
        let jid: BareJid = cfg.jid.parse().map_err(|e| {
            LoginError::Config(format!("`{}` is not a valid bare JID: {e}", cfg.jid))
        })?;
        if jid.node().is_none() {
            return Err(LoginError::Config(format!(
                "`{}` has no user part (write user@server)",
                cfg.jid
            )));
        }
        let tls = tls::client_config(cfg.ca_file.as_deref())?;
        let target = match &cfg.server {
            Some(addr) => Target::Addr(addr.clone()),
            None => Target::Srv(jid.domain().to_string()),
        };
        let connector = Connector::new(target, cfg.tls, tls);
        let deadline = cfg.login_timeout;
        let mechanism = tokio::time::timeout(deadline, probe(&connector, &jid, &cfg.password))
            .await
            .map_err(|_| timeout(&cfg.jid, deadline, connector.take_failure()))??;
        let mut stream = StanzaStream::new_c2s(
            connector.clone(),
            Jid::from(jid.clone()),
            cfg.password.clone(),
            Timeouts::default(),
            16,
        );
        let left = deadline.saturating_sub(start.elapsed());
        let bound = tokio::time::timeout(left, async {
            while let Some(event) = stream.next().await {
                if let Event::Stream(StreamEvent::Reset { bound_jid, .. }) = event {
                    return Some(bound_jid);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| timeout(&cfg.jid, deadline, connector.take_failure()))?;
        let info = SessionInfo {
            bound_jid: bound.to_string(),
            mechanism,
            server: connector.target().to_string(),
            tls: cfg.tls,
            login_ms: start.elapsed().as_millis() as u64,
        };
        tracing::info!(jid = %info.bound_jid, mechanism = %info.mechanism, ms = info.login_ms, "logged in");
        Ok(Session {
            stream,
            info,
            jid,
            tracker: IqTracker::default(),
            queued: VecDeque::new(),
        })
    }

    /// What this login established.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Sends a stanza (an id is added if it has none) and waits until it is written.
    pub async fn send(&mut self, mut stanza: Stanza) -> Result<(), std::io::Error> {
        let fresh = || format!("ch-{:016x}", rand::random::<u64>());
        match &mut stanza {
            Stanza::Iq(iq) if iq.id().is_empty() => *iq.id_mut() = fresh(),
            Stanza::Message(m) if m.id.is_none() => {
                m.id = Some(tokio_xmpp::parsers::message::Id(fresh()))
            }
            Stanza::Presence(p) if p.id.is_none() => p.id = Some(fresh()),
            _ => {}
        }
        let mut token = self.stream.send(Box::new(stanza)).await;
        match token.wait_for(StanzaStage::Sent).await {
            Some(StanzaState::Sent { .. }) | Some(StanzaState::Acked { .. }) => Ok(()),
            Some(StanzaState::Failed { error }) => Err(error.into_io_error()),
            Some(StanzaState::Queued) | Some(StanzaState::Dropped) | None => Err(
                std::io::Error::new(std::io::ErrorKind::NotConnected, "the stream closed"),
            ),
        }
    }

    /// The next stanza received, or `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Stanza> {
        if let Some(s) = self.queued.pop_front() {
            return Some(s);
        }
        loop {
            match self.stream.next().await? {
                Event::Stanza(s) => return Some(s),
                Event::Stream(_) => continue,
            }
        }
    }

    /// Sends an IQ request and waits for its answer, which counts only from the entity asked
    /// (or our own server); stanzas arriving meanwhile are kept for [`Session::next`].
    pub async fn iq(&mut self, mut iq: Iq, timeout: Duration) -> Result<Iq, IqError> {
        let (reply, mut answer) = oneshot::channel();
        let id = self.tracker.next_id();
        *iq.id_mut() = id.clone();
        self.tracker.insert(id, iq.to().cloned(), timeout, reply);
        self.send(Stanza::Iq(iq))
            .await
            .map_err(|_| IqError::Closed)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(result) = answer.try_recv() {
                return result;
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    self.tracker.expire(deadline);
                    return answer.try_recv().unwrap_or(Err(IqError::Timeout(timeout)));
                }
                Ok(None) => return Err(IqError::Closed),
                Ok(Some(Event::Stream(_))) => {}
                Ok(Some(Event::Stanza(Stanza::Iq(iq)))) => {
                    if let Some(other) = self.tracker.answer(iq, Some(&self.jid)) {
                        self.keep(Stanza::Iq(other));
                    }
                }
                Ok(Some(Event::Stanza(s))) => self.keep(s),
            }
        }
    }

    fn keep(&mut self, stanza: Stanza) {
        if self.queued.len() >= QUEUED_MAX {
            self.queued.pop_front();
            tracing::debug!(jid = %self.info.bound_jid, "an unread stanza was dropped");
        }
        self.queued.push_back(stanza);
    }

    /// Ends the stream cleanly, so the server drops our presence at once (no ghost).
    pub async fn close(self) {
        self.stream.close().await;
    }
}

fn timeout(jid: &str, deadline: Duration, failure: Option<ConnectFailure>) -> LoginError {
    match failure {
        Some(ConnectFailure::Tls(reason)) => LoginError::UntrustedCertificate {
            jid: jid.into(),
            reason,
        },
        Some(ConnectFailure::Tcp(reason)) => LoginError::Unreachable {
            jid: jid.into(),
            addr: String::new(),
            reason,
        },
        Some(ConnectFailure::Stream(reason)) => LoginError::Protocol {
            jid: jid.into(),
            reason,
        },
        None => LoginError::Timeout {
            jid: jid.into(),
            secs: deadline.as_secs(),
            last: "no answer".into(),
        },
    }
}

/// Connects, authenticates once and closes, returning the mechanism the server accepted.
async fn probe(connector: &Connector, jid: &BareJid, password: &str) -> Result<String, LoginError> {
    let (connection, mechanism) =
        auth::authenticate(connector, jid, password, Timeouts::default()).await?;
    drop(connection);
    Ok(mechanism)
}
