//! What `chamber status` shows about an account, and the tuning of its connection.

use std::time::Duration;

use tokio_xmpp::xmlstream::Timeouts;

use super::TlsMode;

/// Where an account's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// The first login is under way.
    Connecting,
    /// Logged in, presence sent.
    Online,
    /// The connection was lost; XEP-0198 resumption or a new login is under way.
    Suspended,
    /// A login failed; waiting before the next attempt.
    Retrying,
    /// The account was closed on shutdown.
    Closed,
}

/// One account's state, for `chamber status`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccountStatus {
    /// The bare JID.
    pub jid: String,
    /// Connection state.
    pub state: LinkState,
    /// The full JID of the current (or last) session.
    pub bound_jid: Option<String>,
    /// Where it connects.
    pub server: String,
    /// How TLS starts.
    pub tls: TlsMode,
    /// The SASL mechanism of the last login.
    pub mechanism: Option<String>,
    /// Whether the server offers XEP-0198 stream management (so a short outage resumes).
    pub stream_management: bool,
    /// Sessions resumed with XEP-0198 after a lost connection.
    pub resumptions: u32,
    /// New sessions after the first (each one re-sends presence).
    pub reconnects: u32,
    /// When the current session started (Unix milliseconds).
    pub online_since_ms: Option<u64>,
    /// How long the first login took.
    pub login_ms: Option<u64>,
    /// The last failure, in words that say what to do.
    pub last_error: Option<String>,
    /// Whether the last error is one that waiting will not fix (password, certificate).
    pub error_is_permanent: bool,
    /// Login attempts since the last success.
    pub attempts: u32,
    /// Round trip of the last XEP-0199 ping to the server.
    pub ping_rtt_ms: Option<u64>,
}

impl AccountStatus {
    pub(crate) fn new(jid: String, server: String, tls: TlsMode) -> AccountStatus {
        AccountStatus {
            jid,
            state: LinkState::Connecting,
            bound_jid: None,
            server,
            tls,
            mechanism: None,
            stream_management: false,
            resumptions: 0,
            reconnects: 0,
            online_since_ms: None,
            login_ms: None,
            last_error: None,
            error_is_permanent: false,
            attempts: 0,
            ping_rtt_ms: None,
        }
    }
}

/// Connection tuning: how fast a dead TCP connection is noticed and how retries are paced.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Silence before tokio-xmpp probes the stream (`<r/>` or a ping), and then before it
    /// gives the connection up. Default 20 s + 10 s: a dead TCP connection is noticed within
    /// 30 s, and the keepalive pings below keep a healthy one from ever going that quiet.
    pub timeouts: Timeouts,
    /// XEP-0199 pings to the server, for liveness and the RTT in status.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered.
    pub ping_timeout: Duration,
    /// First reconnect delay (before jitter).
    pub backoff_base: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            timeouts: Timeouts {
                read_timeout: Duration::from_secs(20),
                response_timeout: Duration::from_secs(10),
            },
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
