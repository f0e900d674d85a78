//! Who a node is on its links, and who it lets link to it.

use std::sync::Arc;

use xmpp_ext::record::NodeRecord;
use zeroize::Zeroizing;

/// Who we are on links: the record we send, the Noise secret that must match it, and the
/// ring's link key that proves membership.
#[derive(Clone)]
pub struct Identity {
    /// Our signed record, sent in offers and answers.
    pub record: NodeRecord,
    /// The X25519 secret behind the record's Noise key.
    pub noise_secret: Zeroizing<[u8; 32]>,
    /// The ring's pre-shared key ([`xmpp_ext::RingSecret::link_psk`]).
    pub ring_psk: Zeroizing<[u8; 32]>,
}

impl Identity {
    /// From a node's secret keys, its signed record, and the secret of the record's ring.
    pub fn new(
        secret: &xmpp_ext::NodeSecret,
        record: NodeRecord,
        ring: &xmpp_ext::RingSecret,
    ) -> Identity {
        Identity {
            record,
            noise_secret: secret.noise_secret_bytes(),
            ring_psk: ring.link_psk(),
        }
    }
}

/// Decides whether a verified record may link (ring membership, key pinning, friends only).
pub type Policy<A> = Arc<dyn Fn(&A, &NodeRecord) -> Result<(), String> + Send + Sync>;
