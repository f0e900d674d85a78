//! Owned rings' certificates and revocations, as a peer shows them on a link or a member
//! broadcasts them, and friends rings' voucher lists (certificates framed by length): any bytes
//! decode to an error or to a value that encodes back to the same bytes, and checking one never
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_ext::RingId;
use xmpp_ext::cert::{MemberCert, Revocation};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = MemberCert::decode(data) {
        assert_eq!(c.encode(), data, "a decoded certificate re-encodes to its bytes");
        // Against a stranger's key, its own issuer's, and (for one signed by an admin) the
        // owner its admin certificate names, so the admin checks are reached too.
        let _ = c.verify(RingId([1; 32]), &[2; 32], 0);
        let _ = c.verify(c.ring, &c.issuer, c.issued_ms);
        if let Some(admin) = &c.issuer_cert {
            let _ = c.verify(c.ring, &admin.issuer, c.issued_ms);
        }
    }
    for v in chamber::runtime::friends::decode(data) {
        let _ = v.verify(v.ring, &v.issuer, v.issued_ms);
    }
    if let Ok(r) = Revocation::decode(data) {
        assert_eq!(r.encode(), data, "a decoded revocation re-encodes to its bytes");
        let _ = r.verify(RingId([1; 32]), &[2; 32]);
        let _ = r.verify(r.ring, &r.issuer);
        if let Some(admin) = &r.issuer_cert {
            let _ = r.verify(r.ring, &admin.issuer);
        }
    }
});
