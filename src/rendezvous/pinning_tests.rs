//! Key pinning in rendezvous: the first key a friend announces is pinned; a changed key brings
//! no friend up (and takes down the old one) until `trust` accepts it.

use super::tests::{Harness, announce, bare};
use super::*;
use crate::trust::KeySource;

fn ups(evs: &[FriendEvent]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            FriendEvent::Up(f) => Some(f.fingerprint.clone()),
            FriendEvent::Down { .. } => None,
        })
        .collect()
}

fn key(seed: u64) -> xmpp_ext::Fingerprint {
    super::tests::node(seed).public().fingerprint()
}

#[test]
fn first_announced_key_is_pinned_and_saved_once() {
    let mut h = Harness::new();
    h.presence_from("bob@b.example/n", vec![announce(2, 1, "bob@b.example")], 1);
    assert_eq!(ups(&h.events()), vec![key(2).to_hex()]);
    assert_eq!(h.rv.pinned(&bare("bob@b.example")), Some(vec![key(2)]));
    assert!(h.rv.pins_to_save().is_some());
    assert!(
        h.rv.pins_to_save().is_none(),
        "saved once, not on every look"
    );
    // The same key again: nothing new to save.
    h.presence_from("bob@b.example/n", vec![announce(2, 1, "bob@b.example")], 2);
    assert!(h.rv.pins_to_save().is_none());
}

#[test]
fn a_changed_key_takes_the_friend_down_and_is_warned_about() {
    let mut h = Harness::new();
    h.presence_from("bob@b.example/n", vec![announce(2, 1, "bob@b.example")], 1);
    h.events();
    // Same JID, another node key (a swapped announce, or a new key file).
    h.presence_from("bob@b.example/n", vec![announce(3, 1, "bob@b.example")], 2);
    let evs = h.events();
    assert!(ups(&evs).is_empty(), "{evs:?}");
    assert!(
        matches!(&evs[..], [FriendEvent::Down { reason, .. }] if reason.contains("chamber trust")),
        "{evs:?}"
    );
    assert!(h.rv.friends().is_empty());
    let w = h.rv.key_warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].pinned.clone(), w[0].offered.clone(), w[0].source),
        (vec![key(2).to_hex()], key(3).to_hex(), KeySource::Announce)
    );
    // Another resource with the new key: refused as well, counted.
    h.presence_from("bob@b.example/m", vec![announce(3, 1, "bob@b.example")], 3);
    assert!(ups(&h.events()).is_empty());
    assert_eq!(h.rv.key_refusals(), 2);
    // The pinned key still comes up.
    h.presence_from("bob@b.example/o", vec![announce(2, 1, "bob@b.example")], 4);
    assert_eq!(ups(&h.events()), vec![key(2).to_hex()]);
}

#[test]
fn trust_brings_up_the_held_resources_with_the_new_key() {
    let mut h = Harness::new();
    h.presence_from("bob@b.example/n", vec![announce(2, 1, "bob@b.example")], 1);
    h.presence_from("bob@b.example/n", vec![announce(3, 1, "bob@b.example")], 2);
    h.events();
    h.rv.pins_to_save();
    let wrong = key(4).to_hex();
    assert!(
        h.rv.trust(&bare("bob@b.example"), Some(&wrong), false, h.at(3))
            .is_err(),
        "only the key the user was shown"
    );
    let a =
        h.rv.trust(
            &bare("bob@b.example"),
            Some(&key(3).to_hex()),
            false,
            h.at(3),
        )
        .unwrap();
    assert_eq!((a.old, a.new), (vec![key(2).to_hex()], key(3).to_hex()));
    assert_eq!(ups(&h.events()), vec![key(3).to_hex()]);
    assert!(h.rv.key_warnings().is_empty());
    assert!(h.rv.pins_to_save().is_some());
    // The old key is now the stranger.
    h.presence_from("bob@b.example/x", vec![announce(2, 1, "bob@b.example")], 4);
    assert!(ups(&h.events()).is_empty());
}

#[test]
fn a_held_resource_that_left_is_not_brought_up_by_trust() {
    let mut h = Harness::new();
    h.presence_from("bob@b.example/n", vec![announce(2, 1, "bob@b.example")], 1);
    h.presence_from("bob@b.example/n", vec![announce(3, 1, "bob@b.example")], 2);
    let mut gone = tokio_xmpp::parsers::presence::Presence::new(
        tokio_xmpp::parsers::presence::Type::Unavailable,
    );
    gone.from = Some("bob@b.example/n".parse().unwrap());
    h.rv.presence(0, gone, h.at(3));
    h.events();
    h.rv.trust(&bare("bob@b.example"), None, false, h.at(4))
        .unwrap();
    assert!(ups(&h.events()).is_empty());
}

#[test]
fn keys_from_other_sources_share_the_pin() {
    let mut h = Harness::new();
    let bob = bare("bob@b.example");
    assert!(h.rv.check_key(&bob, key(2), KeySource::Record));
    // Its announce with another key is refused: the Jingle record came first.
    h.presence_from("bob@b.example/n", vec![announce(3, 1, "bob@b.example")], 1);
    assert!(ups(&h.events()).is_empty());
    assert!(!h.rv.check_key(&bob, key(3), KeySource::Invite));
    assert!(h.rv.check_key(&bob, key(2), KeySource::NodeKeys));
}
