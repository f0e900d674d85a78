//! The Noise handshake of a link: `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s` (Noise §7.5 and §9),
//! run by snow.
//!
//! Why IK and not XX: both ends already hold each other's static key from the signed node record
//! swapped in the Jingle offer and answer, which is exactly IK's premise ("the initiator knows
//! the responder's static key"). IK then authenticates both ends in one round trip instead of
//! XX's one and a half, so a link is up after two packets; the initiator's static key travels
//! encrypted. A responder that does not hold the key the initiator expects cannot even decrypt
//! message 1, so an impostor learns nothing; the initiator sees no answer and refuses the link.
//!
//! ```text
//! IK:
//!   <- s                       (pre-message: from the responder's signed record)
//!   ...
//!   -> e, es, s, ss            message 1, payload = attempt counter (replay guard)
//!   <- e, ee, se               message 2, empty payload
//! ```
//!
//! The pre-shared key is the ring's link key ([`xmpp_ext::RingSecret::link_psk`]): only members
//! holding the ring secret complete a handshake, whatever their records claim (psk2, as in
//! WireGuard: mixed in at the end of message 2, so the initiator checks it before sending
//! anything). The prologue binds the handshake to its Jingle session (the caller passes the session id), so
//! a handshake recorded in one session is useless in any other.

use snow::HandshakeState;
use zeroize::Zeroizing;

use super::cipher::CipherKey;
use super::wire::{INIT_NOISE_LEN, INIT_PAYLOAD_LEN, RESP_NOISE_LEN};

/// The Noise protocol name.
pub const PROTOCOL: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/// Why a handshake message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The Noise message did not decrypt: wrong keys, another ring's key, wrong session, or
    /// forged.
    #[error("Noise message did not authenticate (wrong keys, or not a member of this ring)")]
    Decrypt,
    /// The peer authenticated with a static key other than the one in its signed record.
    #[error("the peer's Noise key {got} is not the one in its signed record ({expected})")]
    KeyMismatch {
        /// Hex of the key in the record.
        expected: String,
        /// Hex of the key presented.
        got: String,
    },
    /// A message 1 whose attempt counter is not newer than one already answered.
    #[error("replayed handshake initiation")]
    Replay,
    /// snow refused to build the state (a bad local key).
    #[error("Noise setup failed: {0}")]
    Setup(String),
}

/// Keys of a finished handshake, one per direction.
pub struct Keys {
    /// Ours → theirs.
    pub send: CipherKey,
    /// Theirs → ours.
    pub recv: CipherKey,
}

fn builder<'a>(
    local: &'a [u8; 32],
    prologue: &'a [u8],
    psk: &'a [u8; 32],
) -> Result<snow::Builder<'a>, HandshakeError> {
    let params = PROTOCOL
        .parse()
        .map_err(|e: snow::Error| HandshakeError::Setup(e.to_string()))?;
    snow::Builder::new(params)
        .local_private_key(local)
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.psk(2, psk))
        .map_err(|e| HandshakeError::Setup(e.to_string()))
}

/// An initiator waiting for message 2.
pub struct Initiator {
    state: HandshakeState,
}

impl Initiator {
    /// Writes message 1 into `out` ([`INIT_NOISE_LEN`] bytes). `attempt` must grow with each
    /// call within a session.
    pub fn start(
        local: &[u8; 32],
        remote: &[u8; 32],
        prologue: &[u8],
        psk: &[u8; 32],
        attempt: u64,
        out: &mut [u8],
    ) -> Result<Initiator, HandshakeError> {
        let mut state = builder(local, prologue, psk)?
            .remote_public_key(remote)
            .and_then(|b| b.build_initiator())
            .map_err(|e| HandshakeError::Setup(e.to_string()))?;
        let n = state
            .write_message(&attempt.to_le_bytes(), &mut out[..INIT_NOISE_LEN])
            .map_err(|e| HandshakeError::Setup(e.to_string()))?;
        debug_assert_eq!(n, INIT_NOISE_LEN);
        Ok(Initiator { state })
    }

    /// Reads message 2 and derives the transport keys.
    pub fn finish(mut self, msg2: &[u8]) -> Result<Keys, HandshakeError> {
        let mut payload = [0u8; 64];
        self.state
            .read_message(msg2, &mut payload)
            .map_err(|_| HandshakeError::Decrypt)?;
        let (i2r, r2i) = self.state.dangerously_get_raw_split();
        Ok(Keys {
            send: CipherKey::new(i2r),
            recv: CipherKey::new(r2i),
        })
    }
}

/// Answers message 1: checks the initiator's static key against `expected_remote` (from its
/// record) and its attempt counter against `last_attempt`, then writes message 2 into `out`
/// ([`RESP_NOISE_LEN`] bytes). Returns the keys and the attempt counter.
pub fn respond(
    local: &[u8; 32],
    expected_remote: &[u8; 32],
    prologue: &[u8],
    psk: &[u8; 32],
    last_attempt: Option<u64>,
    msg1: &[u8],
    out: &mut [u8],
) -> Result<(Keys, u64), HandshakeError> {
    let mut state = builder(local, prologue, psk)?
        .build_responder()
        .map_err(|e| HandshakeError::Setup(e.to_string()))?;
    let mut payload = Zeroizing::new([0u8; 64]);
    let n = state
        .read_message(msg1, &mut payload[..])
        .map_err(|_| HandshakeError::Decrypt)?;
    let got = state.get_remote_static().ok_or(HandshakeError::Decrypt)?;
    if got != expected_remote {
        return Err(HandshakeError::KeyMismatch {
            expected: hex::encode(expected_remote),
            got: hex::encode(got),
        });
    }
    if n != INIT_PAYLOAD_LEN {
        return Err(HandshakeError::Decrypt);
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&payload[..8]);
    let attempt = u64::from_le_bytes(a);
    if last_attempt.is_some_and(|last| attempt <= last) {
        return Err(HandshakeError::Replay);
    }
    let n = state
        .write_message(&[], &mut out[..RESP_NOISE_LEN])
        .map_err(|e| HandshakeError::Setup(e.to_string()))?;
    debug_assert_eq!(n, RESP_NOISE_LEN);
    let (i2r, r2i) = state.dangerously_get_raw_split();
    Ok((
        Keys {
            send: CipherKey::new(r2i),
            recv: CipherKey::new(i2r),
        },
        attempt,
    ))
}

/// The X25519 public key of a secret scalar (tests and tools).
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    x25519_public(secret)
}

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    use snow::resolvers::{CryptoResolver, DefaultResolver};
    let mut dh = DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .expect("the default resolver has Curve25519");
    dh.set(secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(dh.pubkey());
    out
}
