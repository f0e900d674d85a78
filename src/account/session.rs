//! One logged-in XMPP account. A short probe login runs first, because tokio-xmpp's own client
//! retries forever and swallows why it fails: the probe turns a wrong password, an untrusted
//! certificate or an unreachable server into a [`LoginError`] within the deadline, and tells which
//! SASL mechanism the server accepted. The long-lived client starts only after it succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Event};

use super::connector::{ConnectFailure, Connector, Target, TlsMode};
use super::{LoginError, auth, tls};

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

/// A logged-in account.
pub struct Session {
    client: Client,
    info: SessionInfo,
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
        let mut client = Client::new_with_connector(
            Jid::from(jid.clone()),
            cfg.password.clone(),
            connector.clone(),
            Timeouts::default(),
        );
        let left = deadline.saturating_sub(start.elapsed());
        let bound = tokio::time::timeout(left, async {
            while let Some(event) = client.next().await {
                if let Event::Online { bound_jid, .. } = event {
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
        Ok(Session { client, info })
    }

    /// What this login established.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The underlying tokio-xmpp client, for sending stanzas and reading events.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Ends the stream cleanly, so the server drops our presence at once (no ghost).
    pub async fn close(self) {
        if let Err(e) = self.client.send_end().await {
            tracing::debug!(%e, "stream close");
        }
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
