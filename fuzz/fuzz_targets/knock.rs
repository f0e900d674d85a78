//! Knock datagrams (`chamber::warm::wire`), which anyone can send to a daemon's knock socket:
//! any bytes must open to an error, never a panic; and any envelope sealed with the ring's key
//! must open back to itself (so the inner parsing is reached, past the AEAD).
#![no_main]

use std::sync::OnceLock;

use brunet_compat::address::Address;
use chamber::runtime::envelope::Envelope;
use chamber::warm::wire::{self, KnockKey};
use libfuzzer_sys::fuzz_target;
use xmpp_ext::RingSecret;

fn key() -> &'static KnockKey {
    static KEY: OnceLock<KnockKey> = OnceLock::new();
    KEY.get_or_init(|| KnockKey::new(&RingSecret::from_bytes([7; 32])))
}

fuzz_target!(|data: &[u8]| {
    let _ = wire::tag_of(data);
    let _ = wire::open(key(), data);
    if let Ok(e) = Envelope::decode(data) {
        let from = Address::from_bytes([3; 20]);
        let sealed = wire::seal(key(), &from, 1_700_000_000_000, &e);
        if sealed.len() <= wire::MAX_KNOCK {
            let k = wire::open(key(), &sealed).expect("a sealed knock opens");
            assert_eq!((k.from, k.envelope), (from, e));
        }
    }
});
