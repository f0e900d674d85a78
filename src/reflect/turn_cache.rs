//! TURN credentials from XEP-0215, kept until shortly before they expire, so that each new link
//! can offer relay candidates without asking the XMPP server again.
//!
//! Prosody's `turn_external` and ejabberd's `mod_stun_disco` hand out short-lived credentials
//! (RFC 7635-style REST credentials, hours at most); a relay allocation made with stale ones
//! fails with 401 only after a round trip, so the cache drops them `margin` early. Time is
//! passed in, never read, so tests can step through expiry.

use std::fmt;
use std::time::{Duration, SystemTime};

use xmpp_ext::extdisco::{Action, ExternalService, ServiceKind, Transport};

/// Which TURN server a credential is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TurnKey {
    /// Host name or IP literal, as offered.
    pub host: String,
    /// Port (the protocol's default when the offer named none).
    pub port: u16,
    /// UDP or TCP.
    pub transport: Transport,
}

/// A cached credential; its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `turn` or `turns`.
    pub kind: ServiceKind,
    /// TURN username.
    pub username: String,
    /// TURN password.
    pub password: String,
    /// When the server said they stop working.
    pub expires: SystemTime,
    /// The XMPP server that handed them out.
    pub xmpp_server: String,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("expires", &self.expires)
            .field("xmpp_server", &self.xmpp_server)
            .finish()
    }
}

/// TURN credentials by server, valid until their expiry minus a margin.
#[derive(Debug)]
pub struct TurnCache {
    margin: Duration,
    default_ttl: Duration,
    entries: Vec<(TurnKey, TurnCredentials)>,
}

impl Default for TurnCache {
    fn default() -> Self {
        TurnCache::new(TurnCache::DEFAULT_MARGIN, TurnCache::DEFAULT_TTL)
    }
}

impl TurnCache {
    /// Credentials are dropped this long before they expire (an allocation must outlive setup).
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);
    /// How long credentials that name no expiry are kept before asking again.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

    /// An empty cache; `default_ttl` applies to offers without `expires`.
    pub fn new(margin: Duration, default_ttl: Duration) -> Self {
        TurnCache {
            margin,
            default_ttl,
            entries: Vec::new(),
        }
    }

    /// Takes the TURN services with credentials from one XEP-0215 answer or push (a `remove`
    /// push forgets the server); returns how many were stored. Already stale ones are skipped.
    pub fn update(
        &mut self,
        xmpp_server: &str,
        services: &[ExternalService],
        now: SystemTime,
    ) -> usize {
        let mut stored = 0;
        for s in services {
            if !matches!(s.kind, ServiceKind::Turn | ServiceKind::Turns) {
                continue;
            }
            let Some(port) = s.port_or_default() else {
                continue;
            };
            let key = TurnKey {
                host: s.host.clone(),
                port,
                transport: s.transport,
            };
            self.entries.retain(|(k, _)| *k != key);
            if s.action == Action::Remove {
                continue;
            }
            let (Some(username), Some(password)) = (&s.username, &s.password) else {
                tracing::debug!(host = %s.host, port, "TURN offer without credentials");
                continue;
            };
            let expires = match s.expires_unix() {
                Some(secs) => unix_time(secs),
                None => now + self.default_ttl,
            };
            let creds = TurnCredentials {
                kind: s.kind.clone(),
                username: username.clone(),
                password: password.clone(),
                expires,
                xmpp_server: xmpp_server.to_string(),
            };
            if !self.is_fresh(&creds, now) {
                tracing::debug!(host = %s.host, port, "TURN credentials already expired");
                continue;
            }
            self.entries.push((key, creds));
            stored += 1;
        }
        stored
    }

    /// Credentials for one server, if still fresh at `now`.
    pub fn get(&self, key: &TurnKey, now: SystemTime) -> Option<&TurnCredentials> {
        self.entries
            .iter()
            .find(|(k, c)| k == key && self.is_fresh(c, now))
            .map(|(_, c)| c)
    }

    /// Every fresh credential, in the order they were learnt.
    pub fn fresh(&self, now: SystemTime) -> impl Iterator<Item = (&TurnKey, &TurnCredentials)> {
        self.entries
            .iter()
            .filter(move |(_, c)| self.is_fresh(c, now))
            .map(|(k, c)| (k, c))
    }

    /// Forgets stale credentials; returns how many.
    pub fn purge(&mut self, now: SystemTime) -> usize {
        let before = self.entries.len();
        let (margin, entries) = (self.margin, &mut self.entries);
        entries.retain(|(_, c)| fresh_at(margin, c, now));
        before - self.entries.len()
    }

    /// When the first credential goes stale: ask the XMPP servers again before then.
    pub fn next_refresh(&self) -> Option<SystemTime> {
        self.entries
            .iter()
            .map(|(_, c)| c.expires.checked_sub(self.margin).unwrap_or(c.expires))
            .min()
    }

    /// How many credentials are held, stale ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_fresh(&self, c: &TurnCredentials, now: SystemTime) -> bool {
        fresh_at(self.margin, c, now)
    }
}

fn fresh_at(margin: Duration, c: &TurnCredentials, now: SystemTime) -> bool {
    now.checked_add(margin).is_some_and(|t| t < c.expires)
}

fn unix_time(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        // Before 1970: long expired.
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}
