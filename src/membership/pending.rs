//! Invites received and not yet accepted. Each is kept as it arrived — sealed to our node key —
//! in a 0600 JSON file, so the ring secret is never at rest in clear outside the keystore, and
//! opened again (signature and all) when the file is read.

use std::path::{Path, PathBuf};

use tokio_xmpp::jid::BareJid;
use xmpp_ext::NodeSecret;
use xmpp_ext::invite::{Invite, RingInvite};

use super::MembershipError;

/// One pending invite, as shown by `chamber status` and `chamber ring list`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteInfo {
    /// The ring's name, as the inviter calls it.
    pub ring: String,
    /// The ring's id (hex).
    pub ring_id: String,
    /// Who invited us (bare JID).
    pub from: String,
    /// When it arrived (Unix milliseconds).
    pub received_ms: u64,
}

/// Most invites kept; beyond this the oldest goes (a friend cannot fill the disk with them).
pub const MAX_PENDING: usize = 32;

/// What the file holds per invite.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    from: String,
    received_ms: u64,
    /// The `<invite/>` element as received.
    xml: String,
}

/// A pending invite, opened.
pub struct Pending {
    /// What people see.
    pub info: InviteInfo,
    /// The ring's name and secret.
    pub invite: RingInvite,
    stored: Stored,
}

/// The pending invites of one node, one per ring name (a newer invite replaces an older one).
pub struct PendingInvites {
    path: PathBuf,
    items: Vec<Pending>,
}

impl PendingInvites {
    /// Reads `path` (missing: none pending), opening each invite with `node`; an invite that no
    /// longer opens (another node key) is dropped with a warning.
    pub fn load(path: &Path, node: &NodeSecret) -> Result<PendingInvites, MembershipError> {
        let mut p = PendingInvites::empty(path);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(p.io_error(e)),
        };
        let stored: Vec<Stored> =
            serde_json::from_str(&text).map_err(|e| MembershipError::PendingFile {
                path: path.into(),
                reason: format!("{e}; remove the file to forget the pending invites"),
            })?;
        for s in stored {
            match open(node, s) {
                Ok(item) => p.items.push(item),
                Err(e) => tracing::warn!(path = %path.display(), %e, "dropped a stored invite"),
            }
        }
        Ok(p)
    }

    /// Opens a received `invite` from `from` (checked to be a roster friend by the caller).
    pub fn open(
        node: &NodeSecret,
        invite: &Invite,
        from: &BareJid,
        received_ms: u64,
    ) -> Result<Pending, xmpp_ext::Error> {
        let xml = xmpp_ext::xml::to_string(&invite.to_element())?;
        open(
            node,
            Stored {
                from: from.to_string(),
                received_ms,
                xml,
            },
        )
    }

    /// None pending, to be saved at `path` (when the file there cannot be used).
    pub fn empty(path: &Path) -> PendingInvites {
        PendingInvites {
            path: path.into(),
            items: Vec::new(),
        }
    }

    /// Keeps `p` (replacing an invite to a ring of the same name, and the oldest beyond
    /// [`MAX_PENDING`]) and saves the file.
    pub fn add(&mut self, p: Pending) -> Result<(), MembershipError> {
        self.items.retain(|i| i.info.ring != p.info.ring);
        self.items.push(p);
        if self.items.len() > MAX_PENDING {
            self.items.remove(0);
        }
        self.save()
    }

    /// Takes the invite to ring `name` out (and saves the file).
    pub fn take(&mut self, name: &str) -> Result<Option<Pending>, MembershipError> {
        let Some(i) = self.items.iter().position(|p| p.info.ring == name) else {
            return Ok(None);
        };
        let p = self.items.remove(i);
        self.save()?;
        Ok(Some(p))
    }

    /// The invites, oldest first.
    pub fn list(&self) -> Vec<InviteInfo> {
        self.items.iter().map(|p| p.info.clone()).collect()
    }

    fn save(&self) -> Result<(), MembershipError> {
        let stored: Vec<&Stored> = self.items.iter().map(|p| &p.stored).collect();
        let text = serde_json::to_string_pretty(&stored).map_err(|e| self.io_error(e.into()))?;
        if let Some(dir) = self.path.parent() {
            crate::config::create_private_dir(dir).map_err(|e| self.io_error(e))?;
        }
        crate::config::write_private_file(&self.path, text.as_bytes()).map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: std::io::Error) -> MembershipError {
        MembershipError::PendingFile {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }
}

fn open(node: &NodeSecret, s: Stored) -> Result<Pending, xmpp_ext::Error> {
    let invite = Invite::from_xml(s.xml.as_bytes())?;
    let from: BareJid = s.from.parse().map_err(|_| xmpp_ext::Error::InvalidValue {
        field: "inviter JID",
        reason: "not a bare JID",
    })?;
    let ring = invite.open(node, &from)?;
    Ok(Pending {
        info: InviteInfo {
            ring: ring.ring_name.clone(),
            ring_id: ring.ring_id.to_hex(),
            from: s.from.clone(),
            received_ms: s.received_ms,
        },
        invite: ring,
        stored: s,
    })
}
