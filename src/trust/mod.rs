//! Trust in friends' node keys, and limits on what friends and strangers may cost us.
//!
//! **Key pinning** (DESIGN.md §7, trust on first use): the first node key (its Ed25519 identity
//! fingerprint) seen for a bare JID — in a ring announce, a node record in Jingle, a `<keys/>`
//! answer or an invite — is pinned in a 0600 file next to the pending invites. A different key
//! for a pinned JID is refused wherever it shows up: no friend in rendezvous, no link, no invite
//! sent or accepted. The refusal is logged once per offered key and shown in `chamber status`
//! with both fingerprints until the user runs `chamber trust JID`. So an XMPP server (malicious
//! or compromised) that swaps a friend's announce, record or keys cannot put its own key in the
//! friend's place after the first contact.
//!
//! [`PinBook`] is plain data (rendezvous owns it, the node saves it); [`limits`] holds the
//! token buckets and drop counters of the abuse limits.
#![warn(missing_docs)]

pub mod limits;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use tokio_xmpp::jid::BareJid;
use xmpp_ext::Fingerprint;

/// Where a friend's key was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// A ring announce in presence.
    Announce,
    /// A node record in a Jingle offer or answer.
    Record,
    /// An answer to our `<keys/>` query (before an invite).
    NodeKeys,
    /// An invite the friend sent us.
    Invite,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySource::Announce => "ring announce",
            KeySource::Record => "Jingle node record",
            KeySource::NodeKeys => "node keys answer",
            KeySource::Invite => "ring invite",
        })
    }
}

/// A key for a pinned JID that is not the pinned one: what `chamber status` warns about.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyWarning {
    /// The friend's bare JID.
    pub jid: String,
    /// The pinned fingerprints (hex).
    pub pinned: Vec<String>,
    /// The fingerprint offered now (hex).
    pub offered: String,
    /// Where it was first seen.
    pub source: KeySource,
    /// When it was first seen (Unix milliseconds).
    pub first_seen_ms: u64,
    /// How many times it was refused.
    pub refused: u64,
}

/// What [`PinBook::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// No key was pinned for the JID; this one is now.
    Pinned,
    /// The pinned key (or one of them).
    Known,
    /// Another key: refuse it. `first` is true the first time this key is offered (log it).
    Changed {
        /// First time this key was refused.
        first: bool,
    },
}

/// What `chamber trust` changed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    /// The friend's bare JID.
    pub jid: String,
    /// The fingerprints pinned before (hex).
    pub old: Vec<String>,
    /// The fingerprint accepted (hex).
    pub new: String,
    /// Whether the old keys stay accepted too (a second device on the same JID).
    pub kept_old: bool,
}

/// Why pins could not be read, written or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The pin file is unreadable or damaged.
    #[error(
        "cannot read the pinned keys in {path}: {reason}; fix or remove the file (every friend's \
         key is then pinned again on first sight)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The pin file could not be written.
    #[error("cannot save the pinned keys to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Nothing to accept for this JID.
    #[error("{jid} offered no new key: {detail}")]
    NothingToAccept {
        /// The JID.
        jid: String,
        /// What is pinned, if anything.
        detail: String,
    },
    /// The key offered changed between showing it and accepting it.
    #[error(
        "{jid} now offers key {now}, not {expected}; run `chamber trust {jid}` again to see it"
    )]
    ChangedAgain {
        /// The JID.
        jid: String,
        /// The key the user accepted (hex).
        expected: String,
        /// The key offered now (hex).
        now: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pin {
    keys: Vec<Fingerprint>,
    since_ms: u64,
}

/// Most refused keys remembered for status (one per JID; a flood of JIDs cannot grow it).
const MAX_WARNINGS: usize = 256;
/// Most keys accepted for one JID (devices that share an account).
const MAX_KEYS_PER_JID: usize = 8;

/// The pinned keys per bare JID, and the other keys offered for them since.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinBook {
    pins: BTreeMap<BareJid, Pin>,
    changed: BTreeMap<BareJid, (Fingerprint, KeyWarning)>,
}

impl PinBook {
    /// Checks `key` seen for `jid` in `source` at `now_ms`: pins it if the JID has no pin yet.
    pub fn check(
        &mut self,
        jid: &BareJid,
        key: Fingerprint,
        source: KeySource,
        now_ms: u64,
    ) -> Check {
        let Some(pin) = self.pins.get(jid) else {
            self.pins.insert(
                jid.clone(),
                Pin {
                    keys: vec![key],
                    since_ms: now_ms,
                },
            );
            return Check::Pinned;
        };
        if pin.keys.contains(&key) {
            return Check::Known;
        }
        if let Some((offered, w)) = self.changed.get_mut(jid)
            && *offered == key
        {
            w.refused += 1;
            return Check::Changed { first: false };
        }
        if self.changed.len() >= MAX_WARNINGS && !self.changed.contains_key(jid) {
            // Keep the oldest warnings; the key is refused all the same.
            return Check::Changed { first: false };
        }
        let warning = KeyWarning {
            jid: jid.to_string(),
            pinned: pin.keys.iter().map(Fingerprint::to_hex).collect(),
            offered: key.to_hex(),
            source,
            first_seen_ms: now_ms,
            refused: 1,
        };
        self.changed.insert(jid.clone(), (key, warning));
        Check::Changed { first: true }
    }

    /// The fingerprints pinned for `jid`.
    pub fn pinned(&self, jid: &BareJid) -> Option<&[Fingerprint]> {
        self.pins.get(jid).map(|p| p.keys.as_slice())
    }

    /// Every pinned fingerprint, whoever it is pinned for: our friends' keys.
    pub fn fingerprints(&self) -> std::collections::BTreeSet<[u8; 32]> {
        self.pins
            .values()
            .flat_map(|p| p.keys.iter().map(|k| k.0))
            .collect()
    }

    /// The keys refused since the node started, by JID.
    pub fn warnings(&self) -> Vec<KeyWarning> {
        self.changed.values().map(|(_, w)| w.clone()).collect()
    }

    /// Accepts the key `jid` offers instead of (or, with `keep_old`, besides) the pinned one.
    /// `expected` (hex), when given, must be the key offered now, so the user accepts what they
    /// were shown.
    pub fn accept(
        &mut self,
        jid: &BareJid,
        expected: Option<&str>,
        keep_old: bool,
        now_ms: u64,
    ) -> Result<Accepted, TrustError> {
        let Some((offered, _)) = self.changed.get(jid) else {
            let detail = match self.pinned(jid) {
                Some(keys) => format!(
                    "its pinned key {} is the only one seen",
                    keys.iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "no key is pinned for it yet (it is pinned when first seen)".into(),
            };
            return Err(TrustError::NothingToAccept {
                jid: jid.to_string(),
                detail,
            });
        };
        let offered = *offered;
        if let Some(e) = expected
            && !e.eq_ignore_ascii_case(&offered.to_hex())
        {
            return Err(TrustError::ChangedAgain {
                jid: jid.to_string(),
                expected: e.to_string(),
                now: offered.to_hex(),
            });
        }
        self.changed.remove(jid);
        let pin = self.pins.entry(jid.clone()).or_insert(Pin {
            keys: Vec::new(),
            since_ms: now_ms,
        });
        let old: Vec<String> = pin.keys.iter().map(Fingerprint::to_hex).collect();
        if !keep_old {
            pin.keys.clear();
        }
        pin.keys.push(offered);
        if pin.keys.len() > MAX_KEYS_PER_JID {
            pin.keys.remove(0);
        }
        pin.since_ms = now_ms;
        Ok(Accepted {
            jid: jid.to_string(),
            old,
            new: offered.to_hex(),
            kept_old: keep_old,
        })
    }

    /// Reads the pins saved at `path` (a missing file: none pinned yet).
    pub fn load(path: &Path) -> Result<PinBook, TrustError> {
        let err = |reason: String| TrustError::Read {
            path: path.into(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PinBook::default()),
            Err(e) => return Err(err(e.to_string())),
        };
        let file: PinFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let mut book = PinBook::default();
        for p in file.pins {
            let jid: BareJid = p
                .jid
                .parse()
                .map_err(|_| err(format!("`{}` is not a bare JID", p.jid)))?;
            let keys = p
                .keys
                .iter()
                .map(|k| k.parse::<Fingerprint>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("{jid}: {e}")))?;
            if keys.is_empty() {
                return Err(err(format!("{jid}: no key")));
            }
            book.pins.insert(
                jid,
                Pin {
                    keys,
                    since_ms: p.since_ms,
                },
            );
        }
        Ok(book)
    }

    /// Writes the pins to `path` (0600, atomically; its folder is made private if new).
    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let werr = |source| TrustError::Write {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::config::create_private_dir(dir).map_err(werr)?;
        }
        let file = PinFile {
            version: 1,
            pins: self
                .pins
                .iter()
                .map(|(jid, p)| StoredPin {
                    jid: jid.to_string(),
                    keys: p.keys.iter().map(Fingerprint::to_hex).collect(),
                    since_ms: p.since_ms,
                })
                .collect(),
        };
        // Invariant: plain strings and integers always serialise.
        let text = serde_json::to_vec_pretty(&file).expect("pin file serialises");
        crate::config::write_private_file(path, &text).map_err(werr)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PinFile {
    version: u32,
    pins: Vec<StoredPin>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPin {
    jid: String,
    keys: Vec<String>,
    since_ms: u64,
}
