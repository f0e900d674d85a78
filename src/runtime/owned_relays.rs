//! An owned ring's relay edges: the ring core makes them itself, where no certificate is
//! seen, so the core gets a plug-in that keeps none to the peers whose links were refused.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use brunet_compat::address::Address as RingAddress;
use brunet_compat::ring::{Admission as CoreAdmission, ConnType, LinkKind};

use super::admission::Admission;

impl Admission {
    /// The core's plug-in for an owned ring.
    pub fn core_admission(&self) -> Box<dyn CoreAdmission> {
        Box::new(NoRelayToRefused {
            shut: self.shut.clone(),
        })
    }

    pub(super) fn shut(&self, peer: RingAddress, shut: bool) {
        if let Ok(mut s) = self.shut.lock() {
            if shut {
                s.insert(peer);
            } else {
                s.remove(&peer);
            }
        }
    }
}

/// The core's admission in an owned ring. Direct links reach the core only once the runtime
/// checked the peer's certificate; relay edges are made inside the core, where no certificate
/// is seen, so they are refused to the peers whose own links were refused. Otherwise a member
/// whose direct link to a non-member failed would reach it over a relay edge instead (which
/// the forwarder, a member, would not carry, but the edge would sit in the table meanwhile).
struct NoRelayToRefused {
    shut: Arc<Mutex<BTreeSet<RingAddress>>>,
}

impl CoreAdmission for NoRelayToRefused {
    fn admit(&mut self, peer: &RingAddress, kind: LinkKind, _: ConnType) -> bool {
        kind != LinkKind::Relay || self.shut.lock().is_ok_and(|s| !s.contains(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_relay_edge_to_a_refused_peer_until_one_of_its_links_is_admitted() {
        let a = Admission::default();
        let mut core = a.core_admission();
        let p = RingAddress::from_bytes([4; 20]);
        assert!(core.admit(&p, LinkKind::Relay, ConnType::NONE));
        a.shut(p, true);
        assert!(!core.admit(&p, LinkKind::Relay, ConnType::NONE));
        assert!(core.admit(&p, LinkKind::Direct, ConnType::NONE));
        a.shut(p, false);
        assert!(core.admit(&p, LinkKind::Relay, ConnType::NONE));
    }
}
