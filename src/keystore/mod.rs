//! Where the node's secrets live: account passwords, the node's private key and ring secrets.
//!
//! The OS keyring comes first (keyring-core; on Linux the kernel's keyutils store, which needs no
//! daemon, so it works on a headless machine too, but forgets its keys at reboot). Where no
//! keyring works, a file store in a folder only the user may enter holds each secret in a 0600
//! file. `auto` picks the keyring and falls back to files *loudly*: the reason is kept in
//! [`StoreInfo`], logged as a warning and shown by `chamber status`. Secrets are never printed:
//! [`Secret`] has no `Display` and its `Debug` is redacted.
#![warn(missing_docs)]

mod file;
#[cfg(target_os = "linux")]
mod keyring;

use std::path::PathBuf;

use rand::rngs::OsRng;
use xmpp_ext::NodeSecret;
use zeroize::Zeroizing;

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The OS keyring refused or failed.
    #[error(
        "the {store} failed ({reason}); set `backend = \"file\"` under [keystore] in the configuration to keep secrets in files instead"
    )]
    Keyring {
        /// Which keyring.
        store: &'static str,
        /// What it said.
        reason: String,
    },
    /// A file of the file store could not be used.
    #[error("the file keystore at {path} failed: {reason}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong and how to fix it.
        reason: String,
    },
    /// A secret is missing.
    #[error("no {what} in the {store}; {hint}")]
    Missing {
        /// Which secret.
        what: String,
        /// Where we looked.
        store: String,
        /// How to put it there.
        hint: String,
    },
    /// A stored secret has the wrong size or encoding.
    #[error("the {what} in the {store} is damaged ({reason}); remove it and add it again")]
    Damaged {
        /// Which secret.
        what: String,
        /// Where.
        store: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which store to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The OS keyring if it works, else the file store (said so in `status`).
    #[default]
    Auto,
    /// The OS keyring only; an error if it does not work.
    Keyring,
    /// The permission-restricted file store only.
    File,
}

/// The `[keystore]` table of the configuration.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreConfig {
    /// Which store.
    #[serde(default)]
    pub backend: Backend,
    /// The file store's folder (default `$XDG_DATA_HOME/chamber/secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The keyring service name (default `chamber`), so several configurations can coexist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The store in use, for `chamber status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreInfo {
    /// `kernel-keyring` or `file`.
    pub kind: String,
    /// A sentence for people: what it is and where.
    pub description: String,
    /// Why the keyring was not used, when `auto` fell back to files.
    pub fallback_reason: Option<String>,
}

/// The name of one secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretName {
    /// An account's password.
    Password(String),
    /// The node's private keys (one identity across all accounts).
    NodeKey,
    /// A ring's secret, by ring name.
    Ring(String),
}

impl SecretName {
    /// The key under which it is stored (`/` never occurs in a bare JID).
    fn key(&self) -> String {
        match self {
            SecretName::Password(jid) => format!("password/{jid}"),
            SecretName::NodeKey => "node-key".into(),
            SecretName::Ring(name) => format!("ring/{name}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            SecretName::Password(jid) => format!("password for {jid}"),
            SecretName::NodeKey => "node key".into(),
            SecretName::Ring(name) => format!("secret of ring `{name}`"),
        }
    }
}

/// Secret bytes, wiped when dropped and never shown.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

enum Store {
    #[cfg(target_os = "linux")]
    Keyring(keyring::KeyringStore),
    File(file::FileStore),
}

/// An open keystore.
pub struct Keystore {
    store: Store,
    info: StoreInfo,
}

impl Keystore {
    /// Opens the store the configuration asks for; `default_dir` is the XDG file-store folder.
    pub fn open(cfg: &KeystoreConfig, default_dir: PathBuf) -> Result<Keystore, KeystoreError> {
        let service = cfg.service.clone().unwrap_or_else(|| "chamber".into());
        let dir = cfg.dir.clone().unwrap_or(default_dir);
        let file = |fallback_reason: Option<String>| {
            let store = file::FileStore::open(dir.clone())?;
            let description = format!("file store at {} (0600 files, 0700 folder)", dir.display());
            if let Some(reason) = &fallback_reason {
                tracing::warn!(%reason, dir = %dir.display(), "no OS keyring: secrets are kept in files");
            }
            Ok(Keystore {
                store: Store::File(store),
                info: StoreInfo {
                    kind: "file".into(),
                    description,
                    fallback_reason,
                },
            })
        };
        match cfg.backend {
            Backend::File => file(None),
            Backend::Keyring => Keystore::keyring(&service),
            Backend::Auto => match Keystore::keyring(&service) {
                Ok(k) => Ok(k),
                Err(e) => file(Some(e.to_string())),
            },
        }
    }

    #[cfg(target_os = "linux")]
    fn keyring(service: &str) -> Result<Keystore, KeystoreError> {
        let store = keyring::KeyringStore::open(service)?;
        Ok(Keystore {
            info: StoreInfo {
                kind: "kernel-keyring".into(),
                description: format!(
                    "Linux kernel keyring (keyutils, service `{service}`; kept until reboot)"
                ),
                fallback_reason: None,
            },
            store: Store::Keyring(store),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn keyring(_service: &str) -> Result<Keystore, KeystoreError> {
        Err(KeystoreError::Keyring {
            store: "OS keyring",
            reason: "no keyring store is built for this platform yet".into(),
        })
    }

    /// Which store this is.
    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// The secret, if stored.
    pub fn get(&self, name: &SecretName) -> Result<Option<Secret>, KeystoreError> {
        let bytes = match &self.store {
            #[cfg(target_os = "linux")]
            Store::Keyring(k) => k.get(&name.key())?,
            Store::File(f) => f.get(&name.key())?,
        };
        Ok(bytes.map(|b| Secret(Zeroizing::new(b))))
    }

    /// Stores (or replaces) a secret.
    pub fn set(&self, name: &SecretName, value: &[u8]) -> Result<(), KeystoreError> {
        match &self.store {
            #[cfg(target_os = "linux")]
            Store::Keyring(k) => k.set(&name.key(), value),
            Store::File(f) => f.set(&name.key(), value),
        }
    }

    /// Removes a secret; `false` if there was none.
    pub fn delete(&self, name: &SecretName) -> Result<bool, KeystoreError> {
        match &self.store {
            #[cfg(target_os = "linux")]
            Store::Keyring(k) => k.delete(&name.key()),
            Store::File(f) => f.delete(&name.key()),
        }
    }

    /// The secret, or an error that says how to store it.
    pub fn require(&self, name: &SecretName, hint: &str) -> Result<Secret, KeystoreError> {
        self.get(name)?.ok_or_else(|| KeystoreError::Missing {
            what: name.describe(),
            store: self.info.description.clone(),
            hint: hint.into(),
        })
    }

    /// An account's password as text.
    pub fn password(&self, jid: &str) -> Result<Zeroizing<String>, KeystoreError> {
        let name = SecretName::Password(jid.into());
        let s = self.require(&name, &format!("run `chamber account add {jid}`"))?;
        String::from_utf8(s.expose().to_vec())
            .map(Zeroizing::new)
            .map_err(|_| self.damaged(&name, "not UTF-8"))
    }

    /// The node's keys, made and stored on first use, so every account shares one identity.
    pub fn node_secret(&self) -> Result<NodeSecret, KeystoreError> {
        let name = SecretName::NodeKey;
        match self.get(&name)? {
            Some(s) => {
                let bytes: &[u8; 64] = s
                    .expose()
                    .try_into()
                    .map_err(|_| self.damaged(&name, "not 64 bytes"))?;
                Ok(NodeSecret::from_bytes(bytes))
            }
            None => {
                let secret = NodeSecret::generate(&mut OsRng);
                self.set(&name, &secret.to_bytes()[..])?;
                tracing::info!(fingerprint = %secret.public().fingerprint().to_hex(), "made a new node key");
                Ok(secret)
            }
        }
    }

    fn damaged(&self, name: &SecretName, reason: &str) -> KeystoreError {
        KeystoreError::Damaged {
            what: name.describe(),
            store: self.info.description.clone(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
