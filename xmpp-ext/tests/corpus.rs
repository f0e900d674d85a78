//! The committed fuzz seeds are valid inputs: if a format changes, this fails until the seeds are
//! rewritten with `cargo run -p xmpp-ext --example fuzz_seeds`.

use std::fs;
use std::path::Path;

use xmpp_ext::announce::Announce;
use xmpp_ext::invite::Invite;
use xmpp_ext::jingle::Jingle;
use xmpp_ext::record::NodeRecord;
use xmpp_ext::{NodeSecret, caps, extdisco};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| {
            (
                p.display().to_string(),
                fs::read(&p).expect("readable seed"),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn announce_seeds_parse_and_verify() {
    for (name, bytes) in seeds("announce") {
        let a = Announce::from_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ok = ["alice@example.org", "bob@example.net"]
            .iter()
            .any(|j| a.verify(&j.parse().expect("literal JID")).is_ok());
        assert!(ok, "{name} verifies for neither seed JID");
    }
}

#[test]
fn record_seeds_parse_and_verify() {
    for (name, bytes) in seeds("record_xml") {
        let r = NodeRecord::from_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.verify(), Ok(()), "{name}");
    }
    for (name, bytes) in seeds("record_binary") {
        let r = NodeRecord::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.verify(), Ok(()), "{name}");
    }
}

#[test]
fn caps_and_extdisco_seeds_parse() {
    for (name, bytes) in seeds("caps_disco") {
        caps::parse_any_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in seeds("extdisco") {
        let s = extdisco::parse_response_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!s.is_empty(), "{name}");
    }
}

#[test]
fn jingle_seeds_parse() {
    for (name, bytes) in seeds("jingle") {
        Jingle::from_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn invite_seeds_open_with_the_fuzz_key() {
    let recipient = NodeSecret::from_bytes(&[7; 64]);
    for (name, bytes) in seeds("invite") {
        let i = Invite::from_xml(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        i.open(
            &recipient,
            &"alice@example.org".parse().expect("literal JID"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
