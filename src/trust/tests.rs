use std::os::unix::fs::PermissionsExt;

use tokio_xmpp::jid::BareJid;
use xmpp_ext::Fingerprint;

use super::*;

fn jid(s: &str) -> BareJid {
    s.parse().unwrap()
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chamber-trust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fp(b: u8) -> Fingerprint {
    Fingerprint([b; 32])
}

#[test]
fn first_key_is_pinned_and_another_refused() {
    let mut book = PinBook::default();
    let bob = jid("bob@b.lab");
    assert_eq!(
        book.check(&bob, fp(1), KeySource::Announce, 10),
        Check::Pinned
    );
    assert_eq!(book.check(&bob, fp(1), KeySource::Record, 11), Check::Known);
    assert_eq!(
        book.check(&bob, fp(2), KeySource::Record, 12),
        Check::Changed { first: true }
    );
    assert_eq!(
        book.check(&bob, fp(2), KeySource::Announce, 13),
        Check::Changed { first: false }
    );
    // The pinned key still works; the change stays listed.
    assert_eq!(
        book.check(&bob, fp(1), KeySource::Announce, 14),
        Check::Known
    );
    let w = book.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].jid, "bob@b.lab");
    assert_eq!(w[0].pinned, vec![fp(1).to_hex()]);
    assert_eq!(w[0].offered, fp(2).to_hex());
    assert_eq!(w[0].source, KeySource::Record);
    assert_eq!((w[0].first_seen_ms, w[0].refused), (12, 2));
    // Other JIDs are independent.
    assert_eq!(
        book.check(&jid("carol@b.lab"), fp(2), KeySource::NodeKeys, 15),
        Check::Pinned
    );
}

#[test]
fn a_third_key_replaces_the_warning_and_is_logged_again() {
    let mut book = PinBook::default();
    let bob = jid("bob@b.lab");
    book.check(&bob, fp(1), KeySource::Announce, 1);
    book.check(&bob, fp(2), KeySource::Announce, 2);
    assert_eq!(
        book.check(&bob, fp(3), KeySource::Announce, 3),
        Check::Changed { first: true }
    );
    assert_eq!(book.warnings()[0].offered, fp(3).to_hex());
}

#[test]
fn accept_replaces_or_adds_the_key() {
    let mut book = PinBook::default();
    let bob = jid("bob@b.lab");
    book.check(&bob, fp(1), KeySource::Announce, 1);
    book.check(&bob, fp(2), KeySource::Announce, 2);
    let a = book.accept(&bob, Some(&fp(2).to_hex()), false, 3).unwrap();
    assert_eq!(a.old, vec![fp(1).to_hex()]);
    assert_eq!(a.new, fp(2).to_hex());
    assert!(book.warnings().is_empty());
    assert_eq!(book.check(&bob, fp(2), KeySource::Record, 4), Check::Known);
    assert_eq!(
        book.check(&bob, fp(1), KeySource::Record, 5),
        Check::Changed { first: true },
        "the old key is no longer accepted"
    );
    // A second device: keep both.
    book.accept(&bob, None, true, 6).unwrap();
    assert_eq!(book.check(&bob, fp(1), KeySource::Record, 7), Check::Known);
    assert_eq!(book.check(&bob, fp(2), KeySource::Record, 8), Check::Known);
}

#[test]
fn accept_needs_a_change_and_the_key_that_was_shown() {
    let mut book = PinBook::default();
    let bob = jid("bob@b.lab");
    assert!(matches!(
        book.accept(&bob, None, false, 1),
        Err(TrustError::NothingToAccept { .. })
    ));
    book.check(&bob, fp(1), KeySource::Announce, 1);
    let e = book.accept(&bob, None, false, 2).unwrap_err();
    assert!(e.to_string().contains("only one seen"), "{e}");
    book.check(&bob, fp(2), KeySource::Announce, 3);
    let e = book
        .accept(&bob, Some(&fp(3).to_hex()), false, 4)
        .unwrap_err();
    assert!(matches!(e, TrustError::ChangedAgain { .. }), "{e}");
    assert_eq!(
        book.check(&bob, fp(2), KeySource::Announce, 5),
        Check::Changed { first: false }
    );
}

#[test]
fn pins_survive_a_restart_in_a_private_file() {
    let dir = scratch("restart");
    let path = dir.join("chamber").join("pins.json");
    assert_eq!(PinBook::load(&path).unwrap(), PinBook::default());
    let mut book = PinBook::default();
    book.check(&jid("bob@b.lab"), fp(1), KeySource::Announce, 1);
    book.check(&jid("carol@a.lab"), fp(9), KeySource::Invite, 2);
    book.check(&jid("bob@b.lab"), fp(2), KeySource::Announce, 3);
    book.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut again = PinBook::load(&path).unwrap();
    // Pins are kept; refusals are not (the key is refused again at its next sight).
    assert!(again.warnings().is_empty());
    assert_eq!(again.pinned(&jid("bob@b.lab")), Some(&[fp(1)][..]));
    assert_eq!(
        again.check(&jid("bob@b.lab"), fp(2), KeySource::Announce, 4),
        Check::Changed { first: true }
    );
}

#[test]
fn a_damaged_file_says_what_to_do() {
    let dir = scratch("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pins.json");
    std::fs::write(
        &path,
        "{\"version\":1,\"pins\":[{\"jid\":\"bob@b.lab\",\"keys\":[\"zz\"],\"since_ms\":0}]}",
    )
    .unwrap();
    let e = PinBook::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("pins.json") && e.contains("remove the file"),
        "{e}"
    );
}

#[test]
fn warnings_are_bounded() {
    let mut book = PinBook::default();
    for i in 0..(MAX_WARNINGS + 50) {
        let j = jid(&format!("u{i}@x.lab"));
        book.check(&j, fp(1), KeySource::Announce, 0);
        book.check(&j, fp(2), KeySource::Announce, 0);
    }
    assert_eq!(book.warnings().len(), MAX_WARNINGS);
}
