//! Everything a node needs before it starts, read from the configuration and the keystore, with
//! errors that say what to fix.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xmpp_ext::{NodeSecret, RingSecret};

use crate::account::{AccountConfig, LinkOptions, LoginError};
use crate::config::{Config, ConfigError, Paths, RingEntry, SecretRef};
use crate::control::ControlError;
use crate::keystore::{Keystore, KeystoreError, SecretName};
use crate::rendezvous::{RendezvousOptions, RingMembership};
use crate::runtime::RingSpec;

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A secret could not be read.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// An account's settings can never work.
    #[error(transparent)]
    Account(#[from] LoginError),
    /// The control socket could not be opened.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Nothing to log into.
    #[error("no account is configured in {path}; add one with `chamber account add JID`")]
    NoAccounts {
        /// The configuration file.
        path: PathBuf,
    },
    /// The pinned keys cannot be read.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// The services could not start.
    #[error(transparent)]
    Services(#[from] crate::services::ServiceError),
    /// The app socket could not be opened.
    #[error("cannot open the app socket {path}: {source}")]
    AppSocket {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A ring's secret is missing or malformed.
    #[error("ring `{ring}`: {reason}")]
    RingSecret {
        /// The ring.
        ring: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A node ready to run.
pub struct NodeSetup {
    /// The configuration.
    pub config: Config,
    /// Where it came from.
    pub config_path: PathBuf,
    /// The control socket to listen on.
    pub control_socket: PathBuf,
    /// The open keystore.
    pub keystore: Keystore,
    /// The node's identity, shared by all accounts.
    pub secret: NodeSecret,
    /// Login settings with passwords, in config order.
    pub accounts: Vec<AccountConfig>,
    /// The rings, with their ids.
    pub rings: Vec<RingMembership>,
    /// The rings' secrets, for the runtime (same order as `rings`).
    pub ring_specs: Vec<RingSpec>,
    /// Connection tuning.
    pub link: LinkOptions,
    /// Liveness checks of friends.
    pub rendezvous: RendezvousOptions,
    /// Where invites wait until accepted.
    pub invites_file: PathBuf,
    /// Where friends' pinned node keys are kept.
    pub pins_file: PathBuf,
    /// The peer cache of warm restarts.
    pub peer_cache: PathBuf,
    /// Owned rings' revocations, kept across restarts.
    pub revoked_file: PathBuf,
}

impl NodeSetup {
    /// Reads the configuration at `config_path` (default: the XDG path) and every secret.
    pub fn load(config_path: Option<&Path>) -> Result<NodeSetup, NodeError> {
        let paths = Paths::from_env()?;
        let config_path = config_path
            .map(Path::to_path_buf)
            .unwrap_or(paths.config_file);
        let config = Config::load(&config_path)?;
        if config.accounts.is_empty() {
            return Err(NodeError::NoAccounts { path: config_path });
        }
        let keystore = Keystore::open(&config.keystore, paths.secrets_dir)?;
        let secret = keystore.node_secret()?;
        let mut accounts = Vec::new();
        for a in &config.accounts {
            let password = keystore.password(&a.jid)?;
            accounts.push(a.to_login(&password));
        }
        let ring_specs = config
            .rings
            .iter()
            .map(|r| ring_spec(r, &keystore))
            .collect::<Result<Vec<_>, _>>()?;
        let rings: Vec<RingMembership> = ring_specs
            .iter()
            .map(|s| RingMembership {
                name: s.name.clone(),
                id: s.secret.ring_id(),
            })
            .collect();
        if rings.is_empty() {
            tracing::warn!("no [[ring]] configured: friends cannot discover this node");
        }
        let control_socket = config
            .control_socket
            .clone()
            .unwrap_or(paths.control_socket);
        let mut link = LinkOptions::default();
        let mut rendezvous = RendezvousOptions::default();
        config.timing.apply(&mut link, &mut rendezvous);
        Ok(NodeSetup {
            config,
            config_path,
            control_socket,
            keystore,
            secret,
            accounts,
            rings,
            ring_specs,
            link,
            rendezvous,
            invites_file: paths.invites_file,
            pins_file: paths.pins_file,
            peer_cache: paths.peer_cache,
            revoked_file: paths.revoked_file,
        })
    }
}

/// A ring's secret, wherever the configuration says it is.
pub fn ring_spec(r: &RingEntry, keystore: &Keystore) -> Result<RingSpec, NodeError> {
    let err = |reason: String| NodeError::RingSecret {
        ring: r.name.clone(),
        reason,
    };
    if let Some(policy) = r.friends {
        return Ok(RingSpec {
            name: r.name.clone(),
            secret: RingSecret::of_friends_ring(&r.name),
            owned: None,
            friends: Some(policy),
        });
    }
    let bytes: [u8; 32] = match &r.secret {
        SecretRef::Keystore => {
            let hint = format!(
                "store 32 bytes under `ring/{}`, or put 64 hex digits in a 0600 file and set \
                 `secret = \"file:PATH\"` for the ring",
                r.name
            );
            let s = keystore.require(&SecretName::Ring(r.name.clone()), &hint)?;
            s.expose()
                .try_into()
                .map_err(|_| err("the stored secret is not 32 bytes".into()))?
        }
        SecretRef::File(path) => read_secret_file(path).map_err(err)?,
    };
    let secret = RingSecret::from_bytes(bytes);
    let owned = match (&r.owner, &r.cert) {
        (None, None) => None,
        (Some(owner), Some(cert)) => {
            let owner: [u8; 32] = hex::decode(owner)
                .ok()
                .and_then(|o| o.try_into().ok())
                .ok_or_else(|| err("`owner` is not 64 hex digits".into()))?;
            let cert = hex::decode(cert)
                .ok()
                .and_then(|c| xmpp_ext::cert::MemberCert::decode(&c).ok())
                .ok_or_else(|| err("`cert` is not a member certificate in hex".into()))?;
            if let Err(e) = cert.verify(secret.ring_id(), &owner, crate::account::unix_ms()) {
                tracing::warn!(ring = %r.name, %e, "this node's certificate for the ring does not check; peers will refuse its links until an admin invites it again");
            }
            Some(crate::runtime::OwnedRing { owner, cert })
        }
        _ => {
            return Err(err(
                "an owned ring needs both `owner` and `cert`; ask an admin to invite you again"
                    .into(),
            ));
        }
    };
    Ok(RingSpec {
        name: r.name.clone(),
        secret,
        owned,
        friends: None,
    })
}

fn read_secret_file(path: &Path) -> Result<[u8; 32], String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .map_err(|_| format!("{} must hold exactly 64 hex digits", path.display()))?;
    Ok(out)
}
