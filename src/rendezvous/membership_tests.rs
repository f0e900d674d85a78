//! Rings joined and left live, reachable resources, and the node-keys answer.

use tokio_xmpp::Stanza;
use tokio_xmpp::jid::Jid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type};
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use xmpp_ext::announce::Announce;
use xmpp_ext::node_keys::{self, NodeKeys};

use super::tests::{Harness, announce, bare, full, node, ring};
use super::*;

fn presences(out: &[Output]) -> Vec<Vec<Announce>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                stanza: Stanza::Presence(p),
                ..
            } => Some(
                p.payloads
                    .iter()
                    .filter_map(|e| Announce::from_element(e).ok())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn club() -> RingMembership {
    RingMembership {
        name: "club".into(),
        id: ring(2).ring_id(),
    }
}

#[test]
fn a_ring_joined_live_is_announced_and_finds_friends_already_in_it() {
    let mut h = Harness::new();
    // Bob is in `club` only, which we are not in yet: no event, and no probe of him.
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 2, "bob@b.example")],
        1,
    );
    assert_eq!(h.events(), vec![]);
    h.rv.handle_timeout(h.at(25));
    assert!(
        h.drain().is_empty(),
        "a friend in no ring of ours was probed"
    );
    h.rv.add_ring(club(), h.at(26));
    let out = h.drain();
    let sent = presences(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    let rings: Vec<_> = sent[0].iter().map(Announce::ring).collect();
    assert_eq!(rings, vec![ring(1).ring_id(), ring(2).ring_id()]);
    sent[0][1].verify(&bare("alice@a.example")).unwrap();
    let ups: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(FriendEvent::Up(f)) => Some((f.ring.clone(), f.jid.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ups, vec![("club".into(), "bob@b.example/phone".into())]);
    // He is probed at once (his presence may be a ghost's).
    assert_eq!(h.rv.poll_timeout(), Some(h.at(26)));
    // Joining twice changes nothing.
    h.rv.add_ring(club(), h.at(26));
    assert!(h.drain().is_empty());

    assert!(h.rv.remove_ring("club"));
    let out = h.drain();
    assert!(matches!(
        &out[0],
        Output::Event(FriendEvent::Down { friend, .. }) if friend.ring == "club"
    ));
    let sent = presences(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 1);
    assert_eq!(sent[0][0].ring(), ring(1).ring_id());
    assert!(!h.rv.remove_ring("club"));
    assert_eq!(h.rv.rings().len(), 1);
}

#[test]
fn an_invite_reaches_available_roster_resources_only() {
    let mut h = Harness::new();
    // Bob runs chamber in no ring (no announce); eve is no friend.
    h.presence_from("bob@b.example/laptop", vec![], 1);
    h.presence_from("bob@b.example/phone", vec![], 1);
    h.presence_from("eve@e.example/x", vec![], 1);
    let mut bob = h.rv.resources_of(&bare("bob@b.example"));
    bob.sort();
    assert_eq!(
        bob,
        vec![
            (0, full("bob@b.example/laptop")),
            (0, full("bob@b.example/phone"))
        ]
    );
    assert!(h.rv.on_roster(&bare("bob@b.example")));
    assert!(h.rv.resources_of(&bare("eve@e.example")).is_empty());
    assert!(!h.rv.on_roster(&bare("eve@e.example")));
    let gone =
        Presence::new(Type::Unavailable).with_from(Jid::new("bob@b.example/laptop").unwrap());
    h.rv.presence(0, gone, h.at(2));
    assert_eq!(
        h.rv.resources_of(&bare("bob@b.example")),
        vec![(0, full("bob@b.example/phone"))]
    );
    // A new session of ours forgets who was there.
    h.rv.online(0, full("alice@a.example/r2"), false, h.at(3));
    assert!(h.rv.resources_of(&bare("bob@b.example")).is_empty());
}

#[test]
fn node_keys_are_answered_to_friends_only_and_signed_for_our_jid() {
    let mut h = Harness::new();
    let ask = |from: &str| Iq::Get {
        from: Some(Jid::new(from).unwrap()),
        to: None,
        id: "k1".into(),
        payload: node_keys::query(),
    };
    h.rv.iq_request(0, ask("bob@b.example/phone"), h.at(1));
    h.rv.iq_request(0, ask("eve@e.example/x"), h.at(1));
    let answers: Vec<Iq> = h
        .drain()
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                stanza: Stanza::Iq(iq),
                ..
            } => Some(iq),
            _ => None,
        })
        .collect();
    let Iq::Result {
        payload: Some(keys),
        ..
    } = &answers[0]
    else {
        panic!("{:?}", answers[0])
    };
    let keys: &Element = keys;
    let k = NodeKeys::from_element(keys).unwrap();
    k.verify(&bare("alice@a.example")).unwrap();
    assert_eq!(k.keys(), &node(100).public());
    assert!(
        matches!(&answers[1], Iq::Error { error, .. } if error.defined_condition == DefinedCondition::ServiceUnavailable)
    );
}
