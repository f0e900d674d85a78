//! The configuration file: TOML at `$XDG_CONFIG_HOME/chamber/config.toml` (or `--config`).
//! It holds no secret: passwords, the node key and ring secrets live in the keystore, and a ring
//! names where its secret is ([`SecretRef`]), never the secret itself.
#![warn(missing_docs)]

mod paths;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use paths::Paths;
pub(crate) use paths::{create_private_dir, write_private_file};

use crate::account::{AccountConfig, TlsMode};
use crate::keystore::KeystoreConfig;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read the configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for chamber.
    #[error("the configuration {path} is not valid: {message}; fix or remove the offending line")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with the line.
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot write the configuration {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("the configuration {path} is not usable: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Neither `$XDG_*` nor `$HOME` is set, so no default path exists.
    #[error("cannot find a place for {what}: set $HOME or $XDG_{var}, or pass --config")]
    NoHome {
        /// What was being located.
        what: &'static str,
        /// The XDG variable that would name it.
        var: &'static str,
    },
}

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The daemon's control socket; default `$XDG_RUNTIME_DIR/chamber/control.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    /// STUN servers (`host[:port]`) to use when no XMPP server offers one (XEP-0215).
    #[serde(default, rename = "stun", skip_serializing_if = "Vec::is_empty")]
    pub fallback_stun: Vec<String>,
    /// Where secrets are kept.
    #[serde(default)]
    pub keystore: KeystoreConfig,
    /// The XMPP accounts, in the order they log in.
    #[serde(default, rename = "account", skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountEntry>,
    /// The rings this node joins.
    #[serde(default, rename = "ring", skip_serializing_if = "Vec::is_empty")]
    pub rings: Vec<RingEntry>,
    /// Liveness timing; the defaults suit real servers, tests tighten them.
    #[serde(default, skip_serializing_if = "Timing::is_default")]
    pub timing: Timing,
}

/// `[timing]`: how fast dead connections and vanished friends are noticed, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// XEP-0199 pings to our server every this many seconds (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ping_secs: Option<u64>,
    /// Silence on the stream before it is probed (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_secs: Option<u64>,
    /// Further silence after the probe before the connection is given up (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_after_secs: Option<u64>,
    /// A friend not heard from for this long is pinged (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend_probe_secs: Option<u64>,
    /// How long a friend's ping may go unanswered (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend_timeout_secs: Option<u64>,
}

impl Timing {
    fn is_default(&self) -> bool {
        *self == Timing::default()
    }

    /// Applies the values that are set to the connection and rendezvous options.
    pub fn apply(
        &self,
        link: &mut crate::account::LinkOptions,
        rv: &mut crate::rendezvous::RendezvousOptions,
    ) {
        let secs = Duration::from_secs;
        if let Some(s) = self.server_ping_secs {
            link.ping_interval = secs(s.max(1));
        }
        if let Some(s) = self.silence_secs {
            link.timeouts.read_timeout = secs(s.max(1));
        }
        if let Some(s) = self.dead_after_secs {
            link.timeouts.response_timeout = secs(s.max(1));
            link.ping_timeout = secs(s.max(1));
        }
        if let Some(s) = self.friend_probe_secs {
            rv.probe_interval = secs(s.max(1));
        }
        if let Some(s) = self.friend_timeout_secs {
            rv.probe_timeout = secs(s.max(1));
        }
    }
}

/// One XMPP account, without its password (that is in the keystore).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// The bare JID.
    pub jid: String,
    /// `host:port` to dial instead of the domain's SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `start-tls` (port 5222) or `direct` (port 5223).
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// Trust only this CA (PEM) instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Seconds a login may take before it fails (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_timeout_secs: Option<u64>,
}

fn default_tls() -> TlsMode {
    TlsMode::StartTls
}

impl AccountEntry {
    /// An entry for `jid` with default settings.
    pub fn new(jid: impl Into<String>) -> AccountEntry {
        AccountEntry {
            jid: jid.into(),
            server: None,
            tls: TlsMode::StartTls,
            ca_file: None,
            login_timeout_secs: None,
        }
    }

    /// The login settings, with the password from the keystore.
    pub fn to_login(&self, password: &str) -> AccountConfig {
        let mut cfg = AccountConfig::new(self.jid.clone(), password);
        cfg.server = self.server.clone();
        cfg.tls = self.tls;
        cfg.ca_file = self.ca_file.clone();
        if let Some(s) = self.login_timeout_secs {
            cfg.login_timeout = Duration::from_secs(s);
        }
        cfg
    }
}

/// A ring this node takes part in.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingEntry {
    /// The ring's name, for people only (never sent: the wire carries the ring id).
    pub name: String,
    /// Where the ring's secret is.
    #[serde(default)]
    pub secret: SecretRef,
    /// An owned ring's owner: its Ed25519 identity key, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// An owned ring: this node's member certificate, in hex (public; its key stays ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// A friends ring (SocialVPN style, no owner and no secret): links only to roster friends
    /// whose key is pinned, and to their friends when `fof` allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friends: Option<FriendsPolicy>,
}

/// Who a friends ring links to besides roster friends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FriendsPolicy {
    /// Friends of friends too: a node a friend of ours vouches for (a voucher its friend signed
    /// on their link). Both ends must allow it.
    #[serde(default)]
    pub fof: bool,
}

/// Where a ring's 32-byte secret is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SecretRef {
    /// In the keystore under `ring:<name>` (written as `"keystore"`).
    #[default]
    Keystore,
    /// In a file holding 64 hex digits, readable by its owner only (written as `"file:PATH"`).
    File(PathBuf),
}

impl serde::Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretRef::Keystore => s.serialize_str("keystore"),
            SecretRef::File(p) => s.serialize_str(&format!("file:{}", p.display())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.split_once(':') {
            _ if s == "keystore" => Ok(SecretRef::Keystore),
            Some(("file", path)) if !path.is_empty() => Ok(SecretRef::File(path.into())),
            _ => Err(serde::de::Error::custom(format!(
                "ring secret `{s}` must be \"keystore\" or \"file:/path\""
            ))),
        }
    }
}

impl Config {
    /// Reads `path`; a missing file is an empty configuration (nothing set up yet).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what serde cannot: unique JIDs and ring names, JIDs with a user part.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.into(),
            reason,
        };
        for (i, a) in self.accounts.iter().enumerate() {
            let (user, domain) = a.jid.split_once('@').unwrap_or(("", ""));
            if user.is_empty() || domain.is_empty() || a.jid.contains('/') {
                return Err(invalid(format!(
                    "account `{}` is not a bare JID (user@server)",
                    a.jid
                )));
            }
            if self.accounts[..i].iter().any(|b| b.jid == a.jid) {
                return Err(invalid(format!("account `{}` appears twice", a.jid)));
            }
        }
        for (i, r) in self.rings.iter().enumerate() {
            if r.name.is_empty() || self.rings[..i].iter().any(|b| b.name == r.name) {
                return Err(invalid(format!(
                    "ring names must be unique and non-empty (`{}`)",
                    r.name
                )));
            }
            if r.friends.is_some()
                && (r.owner.is_some() || r.cert.is_some() || r.secret != SecretRef::Keystore)
            {
                return Err(invalid(format!(
                    "ring `{}` is a friends ring: it has no owner, certificate or secret",
                    r.name
                )));
            }
        }
        Ok(())
    }

    /// Writes the configuration (atomically, in a folder only the user can enter).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |source| ConfigError::Write {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            paths::create_private_dir(dir).map_err(err)?;
        }
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// The account with this bare JID.
    pub fn account(&self, jid: &str) -> Option<&AccountEntry> {
        self.accounts.iter().find(|a| a.jid == jid)
    }
}

#[cfg(test)]
mod tests;
