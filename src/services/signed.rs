//! What the services sign with the node's identity key so every member can check who wrote
//! it: broadcasts (carried hop by hop, readable by members but not forgeable) and DHT values.
//!
//! ```text
//! broadcast  identity:32  sig:64  service_len:u8  service  payload…
//!            sig = Ed25519(ctx "broadcast", service_len ‖ service ‖ payload)
//! dht value  stored raw; the core's `sig` field is identity:32 ‖ Ed25519(ctx "dht-value",
//!            key ‖ value), checked by every replica (`runtime::app::SignedValues`)
//! ```
//!
//! ```
//! use brunet_compat::address::Address;
//! use chamber::services::signed::{open_broadcast, seal_broadcast};
//! use xmpp_ext::NodeSecret;
//!
//! let me = NodeSecret::generate(&mut rand::rngs::OsRng);
//! let my_address = Address::from_bytes(me.public().overlay_address().to_bytes());
//! let wire = seal_broadcast(&me, "chat/lobby", b"hi all");
//! let (service, payload) = open_broadcast(&my_address, &wire).unwrap();
//! assert_eq!((service.as_str(), payload.as_slice()), ("chat/lobby", &b"hi all"[..]));
//! // Claimed by another sender: refused.
//! assert!(open_broadcast(&Address::from_bytes([2; 20]), &wire).is_err());
//! ```

use brunet_compat::address::Address as RingAddress;
use xmpp_ext::NodeSecret;
use xmpp_ext::keys::{SigContext, verify_by_identity};

/// Longest service name.
pub const MAX_SERVICE: usize = 255;

/// Why a signed payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// Too short for its fields.
    #[error("truncated signed broadcast ({0} bytes)")]
    Truncated(usize),
    /// The signature does not verify.
    #[error("broadcast signature does not verify")]
    BadSignature,
    /// Signed by another node than the one the ring message names.
    #[error("broadcast signed by {signer}, not by its sender {sender}")]
    WrongSender {
        /// Whose key signed.
        signer: RingAddress,
        /// Who the ring message named.
        sender: RingAddress,
    },
    /// Not UTF-8.
    #[error("service name is not UTF-8")]
    BadService,
}

/// `service_len ‖ service ‖ payload`: the part of a datagram after its kind.
pub fn service_prefixed(service: &str, payload: &[u8]) -> Vec<u8> {
    let s = &service.as_bytes()[..service.len().min(MAX_SERVICE)];
    let mut v = Vec::with_capacity(1 + s.len() + payload.len());
    v.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(s);
    v.extend_from_slice(payload);
    v
}

/// Splits `service_len ‖ service ‖ payload`.
pub fn split_service(b: &[u8]) -> Option<(&str, &[u8])> {
    let (&n, rest) = b.split_first()?;
    let name = rest.get(..usize::from(n))?;
    Some((std::str::from_utf8(name).ok()?, &rest[usize::from(n)..]))
}

/// A broadcast for `service`, signed by `secret`.
pub fn seal_broadcast(secret: &NodeSecret, service: &str, payload: &[u8]) -> Vec<u8> {
    let body = service_prefixed(service, payload);
    let sig = secret.sign(SigContext::Broadcast, &body);
    let mut v = Vec::with_capacity(96 + body.len());
    v.extend_from_slice(&secret.public().identity_bytes());
    v.extend_from_slice(&sig.to_bytes());
    v.extend_from_slice(&body);
    v
}

/// Checks a broadcast from `src`; gives its service and payload.
pub fn open_broadcast(src: &RingAddress, b: &[u8]) -> Result<(String, Vec<u8>), SignedError> {
    if b.len() < 97 {
        return Err(SignedError::Truncated(b.len()));
    }
    let id: [u8; 32] = b[..32]
        .try_into()
        .map_err(|_| SignedError::Truncated(b.len()))?;
    let sig: [u8; 64] = b[32..96]
        .try_into()
        .map_err(|_| SignedError::Truncated(b.len()))?;
    let body = &b[96..];
    let signer = verify_by_identity(&id, SigContext::Broadcast, body, &sig)
        .map_err(|_| SignedError::BadSignature)?;
    let signer = RingAddress::from_bytes(signer.to_bytes());
    if signer != *src {
        return Err(SignedError::WrongSender {
            signer,
            sender: *src,
        });
    }
    let (service, payload) = split_service(body).ok_or(SignedError::BadService)?;
    Ok((service.to_owned(), payload.to_vec()))
}

pub use crate::runtime::app::{dht_key, sign_dht};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::app::SignedValues;

    #[test]
    fn broadcast_checks_signer_and_sender() {
        let me = NodeSecret::generate(&mut rand::rngs::OsRng);
        let addr = RingAddress::from_bytes(me.public().overlay_address().to_bytes());
        let b = seal_broadcast(&me, "chat/lobby", b"hello");
        assert_eq!(
            open_broadcast(&addr, &b).unwrap(),
            ("chat/lobby".to_owned(), b"hello".to_vec())
        );
        let other = RingAddress::from_bytes([2; 20]);
        assert!(matches!(
            open_broadcast(&other, &b),
            Err(SignedError::WrongSender { .. })
        ));
        let mut forged = b.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(
            open_broadcast(&addr, &forged),
            Err(SignedError::BadSignature)
        );
        assert_eq!(
            open_broadcast(&addr, &b[..50]),
            Err(SignedError::Truncated(50))
        );
    }

    #[test]
    fn dht_values_name_their_writer() {
        let me = NodeSecret::generate(&mut rand::rngs::OsRng);
        let addr = RingAddress::from_bytes(me.public().overlay_address().to_bytes());
        let key = dht_key("share/song.ogg");
        let sig = sign_dht(&me, &key, b"v");
        assert_eq!(SignedValues::writer(&key, b"v", &sig), Some(addr));
        assert_eq!(SignedValues::writer(&key, b"w", &sig), None);
        assert_eq!(SignedValues::writer(&dht_key("other"), b"v", &sig), None);
        assert_eq!(SignedValues::writer(&key, b"v", &sig[..90]), None);
    }
}
