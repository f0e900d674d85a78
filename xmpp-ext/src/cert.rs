//! Owned rings (DESIGN.md §7): member certificates and revocations.
//!
//! An owned ring has an owner key (the Ed25519 identity key of the node that created it). The
//! owner signs certificates binding a member's identity key, JID, ring and expiry; a
//! certificate with the admin role lets its holder sign member certificates too. Ring members
//! show their certificate on every new link and refuse peers without a valid one. A revocation,
//! signed by the owner or an admin, puts a member out: every node refuses its key, and any
//! certificate for its JID issued before the revocation.
//!
//! Binary forms (big-endian), signatures over everything before them:
//!
//! ```text
//! cert        v:u8 ring:32 subject:32 role:u8 issued_ms:u64 expires_ms:u64
//!             jid_len:u8 jid  issuer:32  [admin cert of issuer: len:u16 cert]  sig:64
//! revocation  v:u8 ring:32 subject:32 issued_ms:u64 jid_len:u8 jid  issuer:32
//!             [admin cert of issuer: len:u16 cert]  sig:64
//! ```
//!
//! An admin's certificate travels inside what it signs, so a checker needs only the owner key.

use crate::keys::{SigContext, verify_by_identity};
use crate::{Error, NodeSecret, PROTOCOL_VERSION, RingId};

/// Longest JID in a certificate (bare JIDs are short; this bounds the encoding).
pub const MAX_JID: usize = 255;
/// Largest encoded certificate (with an embedded admin certificate).
pub const MAX_CERT: usize = 2 * (1 + 32 + 32 + 1 + 8 + 8 + 1 + MAX_JID + 32 + 2 + 64);

/// What a certificate lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Link to the ring.
    Member,
    /// Link, and sign member certificates and revocations.
    Admin,
}

/// A member certificate. A decoded one is unverified until [`MemberCert::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCert {
    /// The ring.
    pub ring: RingId,
    /// The member's Ed25519 identity key.
    pub subject: [u8; 32],
    /// Member or admin.
    pub role: Role,
    /// When it was signed (Unix ms).
    pub issued_ms: u64,
    /// When it stops being valid (Unix ms).
    pub expires_ms: u64,
    /// The member's bare JID.
    pub jid: String,
    /// Who signed: the owner, or an admin.
    pub issuer: [u8; 32],
    /// The issuer's admin certificate, when the issuer is not the owner.
    pub issuer_cert: Option<Box<MemberCert>>,
    signature: [u8; 64],
}

/// A revocation. A decoded one is unverified until [`Revocation::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The ring.
    pub ring: RingId,
    /// The revoked identity key.
    pub subject: [u8; 32],
    /// When it was signed (Unix ms): certificates for `jid` issued before are void.
    pub issued_ms: u64,
    /// The revoked member's bare JID.
    pub jid: String,
    /// Who signed.
    pub issuer: [u8; 32],
    /// The issuer's admin certificate, when the issuer is not the owner.
    pub issuer_cert: Option<Box<MemberCert>>,
    signature: [u8; 64],
}

/// Why a certificate or revocation is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Malformed bytes.
    #[error("malformed certificate: {0}")]
    Malformed(&'static str),
    /// For another ring.
    #[error("certificate for another ring")]
    WrongRing,
    /// The signature, or the issuer's authority, does not check.
    #[error("certificate not signed by the ring's owner or one of its admins")]
    BadIssuer,
    /// Past its expiry (or, for an admin's, it was expired when it signed).
    #[error("certificate expired")]
    Expired,
    /// For another key than the peer's.
    #[error("certificate for another node key")]
    WrongKey,
    /// For another JID than the peer's.
    #[error("certificate for {cert}, not for {peer}")]
    WrongJid {
        /// In the certificate.
        cert: String,
        /// The peer's.
        peer: String,
    },
    /// The member was revoked.
    #[error("member revoked")]
    Revoked,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CertError> {
        if self.0.len() < n {
            return Err(CertError::Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], CertError> {
        self.take(N)?
            .try_into()
            .map_err(|_| CertError::Malformed("truncated"))
    }
    fn u64(&mut self) -> Result<u64, CertError> {
        Ok(u64::from_be_bytes(self.arr()?))
    }
    fn jid(&mut self) -> Result<String, CertError> {
        let n = usize::from(self.arr::<1>()?[0]);
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| CertError::Malformed("JID not UTF-8"))
    }
    fn issuer_cert(&mut self, depth: u8) -> Result<Option<Box<MemberCert>>, CertError> {
        let n = usize::from(u16::from_be_bytes(self.arr()?));
        if n == 0 {
            return Ok(None);
        }
        if depth > 0 {
            return Err(CertError::Malformed("admin certificates do not nest"));
        }
        Ok(Some(Box::new(MemberCert::decode_at(self.take(n)?, 1)?)))
    }
}

fn put_jid(out: &mut Vec<u8>, jid: &str) {
    let j = &jid.as_bytes()[..jid.len().min(MAX_JID)];
    out.push(j.len() as u8);
    out.extend_from_slice(j);
}

fn put_issuer_cert(out: &mut Vec<u8>, c: &Option<Box<MemberCert>>) {
    match c {
        Some(c) => {
            let b = c.encode();
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(&b);
        }
        None => out.extend_from_slice(&0u16.to_be_bytes()),
    }
}

/// Checks that `issuer` may sign for `ring` at `at_ms`: it is the owner, or holds a valid
/// admin certificate from the owner.
fn check_issuer(
    ring: RingId,
    owner: &[u8; 32],
    issuer: &[u8; 32],
    issuer_cert: &Option<Box<MemberCert>>,
    at_ms: u64,
) -> Result<(), CertError> {
    if issuer == owner {
        return Ok(());
    }
    let Some(admin) = issuer_cert else {
        return Err(CertError::BadIssuer);
    };
    if admin.role != Role::Admin
        || admin.subject != *issuer
        || admin.issuer != *owner
        || admin.issuer_cert.is_some()
    {
        return Err(CertError::BadIssuer);
    }
    admin.verify_signature(ring, owner)?;
    if at_ms > admin.expires_ms {
        return Err(CertError::Expired);
    }
    Ok(())
}

impl MemberCert {
    /// Signs a certificate for `subject` with `issuer`'s key (`issuer_cert`: the issuer's admin
    /// certificate, `None` when the issuer is the owner).
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        issuer: &NodeSecret,
        issuer_cert: Option<MemberCert>,
        ring: RingId,
        subject: [u8; 32],
        jid: &str,
        role: Role,
        issued_ms: u64,
        expires_ms: u64,
    ) -> MemberCert {
        let mut c = MemberCert {
            ring,
            subject,
            role,
            issued_ms,
            expires_ms,
            jid: jid.to_owned(),
            issuer: issuer.public().identity_bytes(),
            issuer_cert: issuer_cert.map(Box::new),
            signature: [0; 64],
        };
        c.signature = issuer.sign(SigContext::Cert, &c.signed_part()).to_bytes();
        c
    }

    fn signed_part(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.push(PROTOCOL_VERSION);
        out.extend_from_slice(&self.ring.0);
        out.extend_from_slice(&self.subject);
        out.push(match self.role {
            Role::Member => 0,
            Role::Admin => 1,
        });
        out.extend_from_slice(&self.issued_ms.to_be_bytes());
        out.extend_from_slice(&self.expires_ms.to_be_bytes());
        put_jid(&mut out, &self.jid);
        out.extend_from_slice(&self.issuer);
        put_issuer_cert(&mut out, &self.issuer_cert);
        out
    }

    /// The bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_part();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses a certificate (unverified).
    pub fn decode(b: &[u8]) -> Result<MemberCert, CertError> {
        if b.len() > MAX_CERT {
            return Err(CertError::Malformed("too large"));
        }
        Self::decode_at(b, 0)
    }

    fn decode_at(b: &[u8], depth: u8) -> Result<MemberCert, CertError> {
        let mut r = Reader(b);
        if r.arr::<1>()?[0] != PROTOCOL_VERSION {
            return Err(CertError::Malformed("unknown version"));
        }
        let ring = RingId(r.arr()?);
        let subject = r.arr()?;
        let role = match r.arr::<1>()?[0] {
            0 => Role::Member,
            1 => Role::Admin,
            _ => return Err(CertError::Malformed("unknown role")),
        };
        let issued_ms = r.u64()?;
        let expires_ms = r.u64()?;
        let jid = r.jid()?;
        let issuer = r.arr()?;
        let issuer_cert = r.issuer_cert(depth)?;
        let signature = r.arr()?;
        if !r.0.is_empty() {
            return Err(CertError::Malformed("trailing bytes"));
        }
        Ok(MemberCert {
            ring,
            subject,
            role,
            issued_ms,
            expires_ms,
            jid,
            issuer,
            issuer_cert,
            signature,
        })
    }

    fn verify_signature(&self, ring: RingId, _owner: &[u8; 32]) -> Result<(), CertError> {
        if self.ring != ring {
            return Err(CertError::WrongRing);
        }
        verify_by_identity(
            &self.issuer,
            SigContext::Cert,
            &self.signed_part(),
            &self.signature,
        )
        .map(|_| ())
        .map_err(|_| CertError::BadIssuer)
    }

    /// Checks the certificate for `ring` owned by `owner` at `now_ms`: signature, issuer's
    /// authority (the owner, or an admin certified by the owner when it signed), expiry.
    pub fn verify(&self, ring: RingId, owner: &[u8; 32], now_ms: u64) -> Result<(), CertError> {
        self.verify_signature(ring, owner)?;
        check_issuer(ring, owner, &self.issuer, &self.issuer_cert, self.issued_ms)?;
        if now_ms > self.expires_ms {
            return Err(CertError::Expired);
        }
        Ok(())
    }

    /// Whether `r` voids this certificate (its key, or its JID before the revocation).
    pub fn revoked_by(&self, r: &Revocation) -> bool {
        r.ring == self.ring
            && (r.subject == self.subject
                || (r.jid.eq_ignore_ascii_case(&self.jid) && self.issued_ms <= r.issued_ms))
    }
}

impl Revocation {
    /// Signs a revocation of `subject` (and certificates for `jid` issued until now).
    pub fn issue(
        issuer: &NodeSecret,
        issuer_cert: Option<MemberCert>,
        ring: RingId,
        subject: [u8; 32],
        jid: &str,
        issued_ms: u64,
    ) -> Revocation {
        let mut r = Revocation {
            ring,
            subject,
            issued_ms,
            jid: jid.to_owned(),
            issuer: issuer.public().identity_bytes(),
            issuer_cert: issuer_cert.map(Box::new),
            signature: [0; 64],
        };
        r.signature = issuer
            .sign(SigContext::Revocation, &r.signed_part())
            .to_bytes();
        r
    }

    fn signed_part(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.push(PROTOCOL_VERSION);
        out.extend_from_slice(&self.ring.0);
        out.extend_from_slice(&self.subject);
        out.extend_from_slice(&self.issued_ms.to_be_bytes());
        put_jid(&mut out, &self.jid);
        out.extend_from_slice(&self.issuer);
        put_issuer_cert(&mut out, &self.issuer_cert);
        out
    }

    /// The bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_part();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses a revocation (unverified).
    pub fn decode(b: &[u8]) -> Result<Revocation, CertError> {
        if b.len() > MAX_CERT {
            return Err(CertError::Malformed("too large"));
        }
        let mut r = Reader(b);
        if r.arr::<1>()?[0] != PROTOCOL_VERSION {
            return Err(CertError::Malformed("unknown version"));
        }
        let ring = RingId(r.arr()?);
        let subject = r.arr()?;
        let issued_ms = r.u64()?;
        let jid = r.jid()?;
        let issuer = r.arr()?;
        let issuer_cert = r.issuer_cert(0)?;
        let signature = r.arr()?;
        if !r.0.is_empty() {
            return Err(CertError::Malformed("trailing bytes"));
        }
        Ok(Revocation {
            ring,
            subject,
            issued_ms,
            jid,
            issuer,
            issuer_cert,
            signature,
        })
    }

    /// Checks the signature and the issuer's authority for `ring` owned by `owner`. An admin
    /// cannot revoke the owner.
    pub fn verify(&self, ring: RingId, owner: &[u8; 32]) -> Result<(), CertError> {
        if self.ring != ring {
            return Err(CertError::WrongRing);
        }
        if self.subject == *owner && self.issuer != *owner {
            return Err(CertError::BadIssuer);
        }
        verify_by_identity(
            &self.issuer,
            SigContext::Revocation,
            &self.signed_part(),
            &self.signature,
        )
        .map_err(|_| CertError::BadIssuer)?;
        check_issuer(ring, owner, &self.issuer, &self.issuer_cert, self.issued_ms)
    }
}

impl From<CertError> for Error {
    fn from(_: CertError) -> Error {
        Error::Inconsistent("invalid ring certificate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    const DAY: u64 = 86_400_000;

    fn key() -> NodeSecret {
        NodeSecret::generate(&mut OsRng)
    }

    #[test]
    fn owner_and_admin_certificates_check_and_forgeries_do_not() {
        let (owner, admin, bob, mallory) = (key(), key(), key(), key());
        let ring = RingId([7; 32]);
        let o = owner.public().identity_bytes();
        let t = 1_000 * DAY;
        let bob_cert = MemberCert::issue(
            &owner,
            None,
            ring,
            bob.public().identity_bytes(),
            "bob@x",
            Role::Member,
            t,
            t + 30 * DAY,
        );
        assert_eq!(bob_cert.verify(ring, &o, t + DAY), Ok(()));
        assert_eq!(MemberCert::decode(&bob_cert.encode()), Ok(bob_cert.clone()));
        assert_eq!(
            bob_cert.verify(ring, &o, t + 31 * DAY),
            Err(CertError::Expired)
        );
        assert_eq!(
            bob_cert.verify(RingId([8; 32]), &o, t),
            Err(CertError::WrongRing)
        );

        // Mallory signs her own certificate: refused. So is a tampered one.
        let self_signed = MemberCert::issue(
            &mallory,
            None,
            ring,
            mallory.public().identity_bytes(),
            "m@x",
            Role::Admin,
            t,
            t + DAY,
        );
        assert_eq!(self_signed.verify(ring, &o, t), Err(CertError::BadIssuer));
        let mut b = bob_cert.encode();
        b[40] ^= 1;
        assert_eq!(
            MemberCert::decode(&b).unwrap().verify(ring, &o, t),
            Err(CertError::BadIssuer)
        );

        // An admin certified by the owner signs members; a member cannot.
        let admin_cert = MemberCert::issue(
            &owner,
            None,
            ring,
            admin.public().identity_bytes(),
            "admin@x",
            Role::Admin,
            t,
            t + 60 * DAY,
        );
        let carol = MemberCert::issue(
            &admin,
            Some(admin_cert.clone()),
            ring,
            [3; 32],
            "carol@x",
            Role::Member,
            t + DAY,
            t + 9 * DAY,
        );
        assert_eq!(carol.verify(ring, &o, t + 2 * DAY), Ok(()));
        assert_eq!(MemberCert::decode(&carol.encode()), Ok(carol.clone()));
        let by_member = MemberCert::issue(
            &bob,
            Some(bob_cert.clone()),
            ring,
            [4; 32],
            "d@x",
            Role::Member,
            t,
            t + DAY,
        );
        assert_eq!(by_member.verify(ring, &o, t), Err(CertError::BadIssuer));
        // An admin whose certificate had expired when it signed: refused.
        let late = MemberCert::issue(
            &admin,
            Some(admin_cert.clone()),
            ring,
            [5; 32],
            "e@x",
            Role::Member,
            t + 61 * DAY,
            t + 90 * DAY,
        );
        assert_eq!(late.verify(ring, &o, t + 62 * DAY), Err(CertError::Expired));

        // Revocations: by the owner or an admin; never of the owner by an admin.
        let rev = Revocation::issue(
            &admin,
            Some(admin_cert.clone()),
            ring,
            bob.public().identity_bytes(),
            "bob@x",
            t + 2 * DAY,
        );
        assert_eq!(rev.verify(ring, &o), Ok(()));
        assert_eq!(Revocation::decode(&rev.encode()), Ok(rev.clone()));
        assert!(bob_cert.revoked_by(&rev));
        let new_key_same_jid = MemberCert::issue(
            &owner,
            None,
            ring,
            [9; 32],
            "bob@x",
            Role::Member,
            t + DAY,
            t + 9 * DAY,
        );
        assert!(
            new_key_same_jid.revoked_by(&rev),
            "an older certificate for the JID is void too"
        );
        let reissued = MemberCert::issue(
            &owner,
            None,
            ring,
            [9; 32],
            "bob@x",
            Role::Member,
            t + 3 * DAY,
            t + 9 * DAY,
        );
        assert!(
            !reissued.revoked_by(&rev),
            "the owner may let the JID back in later"
        );
        let coup = Revocation::issue(&admin, Some(admin_cert), ring, o, "owner@x", t);
        assert_eq!(coup.verify(ring, &o), Err(CertError::BadIssuer));
        let forged = Revocation::issue(
            &mallory,
            None,
            ring,
            bob.public().identity_bytes(),
            "bob@x",
            t,
        );
        assert_eq!(forged.verify(ring, &o), Err(CertError::BadIssuer));
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert!(MemberCert::decode(&[]).is_err());
        assert!(MemberCert::decode(&[PROTOCOL_VERSION; 300]).is_err());
        assert!(Revocation::decode(&[0; 10]).is_err());
        assert!(MemberCert::decode(&vec![0; MAX_CERT + 1]).is_err());
    }
}
