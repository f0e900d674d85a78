//! Entity caps and disco#info: bytes → XML → `Caps` or `DiscoInfoResult`; a parsed answer must
//! hash, and re-parse to the same verification string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xmpp_ext::caps::{self, Parsed};

fuzz_target!(|data: &[u8]| {
    match caps::parse_any_xml(data) {
        Ok(Parsed::Caps(c)) => {
            let el: Element = c.clone().into();
            let back = caps::parse_caps(&el).expect("a parsed <c/> re-parses");
            assert_eq!(back.ver, c.ver);
            let _ = caps::verify(&c, &caps::disco_info(None));
        }
        Ok(Parsed::DiscoInfo(d)) => {
            let s = caps::verification_string(&d).expect("checked while parsing");
            let c = caps::caps_for(&d, caps::CAPS_NODE).expect("SHA-1 is supported");
            assert_eq!(caps::verify(&c, &d), Ok(()));
            let el: Element = (*d).clone().into();
            if let Ok(back) = caps::parse_disco_info(&el) {
                assert_eq!(caps::verification_string(&back).as_ref(), Ok(&s));
            }
        }
        Err(_) => {}
    }
});
