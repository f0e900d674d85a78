//! Ring membership on disk: `chamber ring create/join/leave` change the `[[ring]]` entries of
//! the configuration and the ring secrets in the keystore, and [`pending`] keeps the invites
//! not yet accepted. The daemon runs these same functions when it is up (and then joins or
//! leaves live), so one process at a time edits the files.
#![warn(missing_docs)]

pub mod pending;

use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use xmpp_ext::RingSecret;
use xmpp_ext::cert::{MemberCert, Role};

use crate::config::{Config, ConfigError, FriendsPolicy, RingEntry, SecretRef};
use crate::keystore::{Keystore, KeystoreError, SecretName};
use crate::runtime::{OwnedRing, RingSpec};
pub use pending::{InviteInfo, Pending, PendingInvites};

/// Why a membership change failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The configuration could not be read or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The name cannot be a ring's.
    #[error("`{name}` cannot name a ring: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// A ring of that name is configured already.
    #[error(
        "a ring named `{name}` is configured already; pick another name, or leave it first (`chamber ring leave {name}`)"
    )]
    Exists {
        /// The ring.
        name: String,
    },
    /// No ring of that name is configured.
    #[error("no ring named `{name}` is configured; `chamber ring list` shows the rings")]
    NotConfigured {
        /// The ring.
        name: String,
    },
    /// Nothing to join under that name.
    #[error("no pending invite to a ring named `{name}`{}", pending_hint(.pending))]
    NoInvite {
        /// The ring asked for.
        name: String,
        /// The rings with pending invites.
        pending: Vec<String>,
    },
    /// The invite's certificate is not for this node, or does not check.
    #[error(
        "the invite to `{name}` carries no valid certificate for this node; ask the inviter to invite you again"
    )]
    BadCertificate {
        /// The ring.
        name: String,
    },
    /// The pending-invites file is unusable.
    #[error("the pending invites file {path} failed: {reason}")]
    PendingFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn pending_hint(pending: &[String]) -> String {
    if pending.is_empty() {
        "; ask a friend in the ring to run `chamber ring invite RING YOUR-JID`".into()
    } else {
        format!(" (pending: {})", pending.join(", "))
    }
}

/// Checks a ring name: it is shown to people, sent inside invites and used as a keystore key.
pub fn check_name(name: &str) -> Result<(), MembershipError> {
    let bad = |reason| {
        Err(MembershipError::BadName {
            name: name.into(),
            reason,
        })
    };
    if name.trim().is_empty() {
        bad("it is empty")
    } else if name.len() > xmpp_ext::invite::MAX_RING_NAME {
        bad("it is longer than 128 bytes")
    } else if name.chars().any(char::is_control) {
        bad("it holds control characters")
    } else if name != name.trim() {
        bad("it starts or ends with spaces")
    } else {
        Ok(())
    }
}

/// `name` as one shell word, for the commands chamber suggests (`chamber ring join 'my club'`).
pub fn shell_word(name: &str) -> String {
    let plain = |c: char| c.is_alphanumeric() || "-_.,:@+=/".contains(c);
    if !name.is_empty() && name.chars().all(plain) {
        name.into()
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    }
}

/// How long the owner's own certificate lasts (it can always sign itself a new one).
const OWNER_CERT_DAYS: u64 = 10 * 365;

/// Makes ring `name`: a fresh secret in the keystore and a `[[ring]]` entry in the
/// configuration at `config_path`. An `owned` ring has this node's key as its owner key
/// (DESIGN.md §7): only nodes holding a certificate it signed, or an admin it named signed,
/// may link, and it can put members out.
pub fn create(
    config_path: &Path,
    keystore: &Keystore,
    name: &str,
    owned: bool,
    friends: Option<FriendsPolicy>,
) -> Result<RingSpec, MembershipError> {
    check_name(name)?;
    if let Some(policy) = friends {
        return add_friends_ring(config_path, name, policy);
    }
    let secret = RingSecret::generate(&mut OsRng);
    let owned = if owned {
        let node = keystore.node_secret()?;
        let config = Config::load(config_path)?;
        let jid = config
            .accounts
            .first()
            .map(|a| a.jid.clone())
            .unwrap_or_default();
        let now = crate::account::unix_ms();
        let me = node.public().identity_bytes();
        let cert = MemberCert::issue(
            &node,
            None,
            secret.ring_id(),
            me,
            &jid,
            Role::Admin,
            now,
            now + OWNER_CERT_DAYS * 86_400_000,
        );
        Some(OwnedRing { owner: me, cert })
    } else {
        None
    };
    add(config_path, keystore, name, secret, owned)
}

/// Accepts the pending invite to ring `name`: its secret to the keystore, the ring to the
/// configuration, the invite out of `pending`.
pub fn accept(
    config_path: &Path,
    keystore: &Keystore,
    pending: &mut PendingInvites,
    name: &str,
) -> Result<RingSpec, MembershipError> {
    if !pending.list().iter().any(|i| i.ring == name) {
        return Err(MembershipError::NoInvite {
            name: name.into(),
            pending: pending.list().into_iter().map(|i| i.ring).collect(),
        });
    }
    let config = Config::load(config_path)?;
    if config.rings.iter().any(|r| r.name == name) {
        return Err(MembershipError::Exists { name: name.into() });
    }
    let Some(p) = pending.take(name)? else {
        return Err(MembershipError::NoInvite {
            name: name.into(),
            pending: Vec::new(),
        });
    };
    let owned = match p.invite.owned {
        Some((owner, cert)) => {
            let me = keystore.node_secret()?.public().identity_bytes();
            let now = crate::account::unix_ms();
            if cert.subject != me || cert.verify(p.invite.ring_id, &owner, now).is_err() {
                return Err(MembershipError::BadCertificate { name: name.into() });
            }
            Some(OwnedRing { owner, cert })
        }
        None => None,
    };
    add(config_path, keystore, name, p.invite.ring_secret, owned)
}

fn add(
    config_path: &Path,
    keystore: &Keystore,
    name: &str,
    secret: RingSecret,
    owned: Option<OwnedRing>,
) -> Result<RingSpec, MembershipError> {
    let mut config = Config::load(config_path)?;
    if config.rings.iter().any(|r| r.name == name) {
        return Err(MembershipError::Exists { name: name.into() });
    }
    keystore.set(&SecretName::Ring(name.into()), secret.as_bytes())?;
    config.rings.push(RingEntry {
        name: name.into(),
        secret: SecretRef::Keystore,
        owner: owned.as_ref().map(|o| hex::encode(o.owner)),
        cert: owned.as_ref().map(|o| hex::encode(o.cert.encode())),
        friends: None,
    });
    config.save(config_path)?;
    Ok(RingSpec {
        name: name.into(),
        secret,
        owned,
        friends: None,
    })
}

/// A friends ring: an entry in the configuration, nothing in the keystore (its secret derives
/// from its name).
fn add_friends_ring(
    config_path: &Path,
    name: &str,
    policy: FriendsPolicy,
) -> Result<RingSpec, MembershipError> {
    let mut config = Config::load(config_path)?;
    if config.rings.iter().any(|r| r.name == name) {
        return Err(MembershipError::Exists { name: name.into() });
    }
    config.rings.push(RingEntry {
        name: name.into(),
        secret: SecretRef::Keystore,
        owner: None,
        cert: None,
        friends: Some(policy),
    });
    config.save(config_path)?;
    Ok(RingSpec {
        name: name.into(),
        secret: RingSecret::of_friends_ring(name),
        owned: None,
        friends: Some(policy),
    })
}

/// Leaves ring `name`: removes its `[[ring]]` entry and, when the keystore holds it, its
/// secret (a secret in a file of the user's is left alone).
pub fn leave(config_path: &Path, keystore: &Keystore, name: &str) -> Result<(), MembershipError> {
    let mut config = Config::load(config_path)?;
    let Some(i) = config.rings.iter().position(|r| r.name == name) else {
        return Err(MembershipError::NotConfigured { name: name.into() });
    };
    let entry = config.rings.remove(i);
    config.save(config_path)?;
    if entry.secret == SecretRef::Keystore && entry.friends.is_none() {
        keystore.delete(&SecretName::Ring(name.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
