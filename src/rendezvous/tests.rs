//! The rendezvous state machine, scripted with explicit times.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::ping::Ping;
use tokio_xmpp::parsers::presence::{Presence, Type};
use tokio_xmpp::parsers::roster::{Item, Roster, Subscription};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_ext::announce::Announce;
use xmpp_ext::{NodeSecret, RingSecret};

use super::*;

pub(super) fn node(seed: u64) -> NodeSecret {
    NodeSecret::generate(&mut StdRng::seed_from_u64(seed))
}

pub(super) fn ring(seed: u64) -> RingSecret {
    RingSecret::generate(&mut StdRng::seed_from_u64(seed))
}

pub(super) fn bare(s: &str) -> BareJid {
    s.parse().unwrap()
}

pub(super) fn full(s: &str) -> FullJid {
    s.parse().unwrap()
}

pub(super) struct Harness {
    pub(super) rv: Rendezvous,
    pub(super) t0: Instant,
}

impl Harness {
    /// Us: alice@a.example, in ring 1, with bob (both), carol (from), dave (to) on the roster.
    pub(super) fn new() -> Harness {
        let rings = vec![RingMembership {
            name: "lab".into(),
            id: ring(1).ring_id(),
        }];
        let mut rv = Rendezvous::new(
            node(100),
            rings,
            vec![bare("alice@a.example")],
            RendezvousOptions::default(),
        );
        let t0 = Instant::now();
        rv.online(0, full("alice@a.example/r1"), false, t0);
        let token = match rv.poll_output() {
            Some(Output::Iq { iq, token, .. }) => {
                assert!(matches!(&iq, Iq::Get { payload, .. } if payload.is("query", ns::ROSTER)));
                token
            }
            other => panic!("expected a roster get, got {other:?}"),
        };
        let item = |j: &str, s| Item {
            jid: bare(j),
            name: None,
            subscription: s,
            ask: Default::default(),
            groups: vec![],
            approved: None,
        };
        let roster = Roster {
            ver: None,
            items: vec![
                item("bob@b.example", Subscription::Both),
                item("carol@a.example", Subscription::From),
                item("dave@a.example", Subscription::To),
            ],
        };
        let answer = Iq::from_result("x", Some(roster));
        rv.iq_result(token, Ok(answer), t0);
        let mut h = Harness { rv, t0 };
        let sent = h.drain();
        assert_eq!(sent.len(), 1, "{sent:?}");
        h
    }

    pub(super) fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    pub(super) fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.rv.poll_output()).collect()
    }

    pub(super) fn events(&mut self) -> Vec<FriendEvent> {
        self.drain()
            .into_iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    pub(super) fn presence_from(&mut self, from: &str, payloads: Vec<Element>, secs: u64) {
        let mut p = Presence::new(Type::None).with_from(Jid::new(from).unwrap());
        p.payloads = payloads;
        self.rv.presence(0, p, self.at(secs));
    }
}

pub(super) fn announce(seed: u64, ring_seed: u64, signed_for: &str) -> Element {
    Announce::new(&node(seed), ring(ring_seed).ring_id(), &bare(signed_for)).to_element()
}

#[test]
fn our_presence_carries_a_signed_announce_and_caps_to_the_roster_only() {
    let mut rv = Rendezvous::new(
        node(100),
        vec![RingMembership {
            name: "lab".into(),
            id: ring(1).ring_id(),
        }],
        vec![bare("alice@a.example")],
        RendezvousOptions::default(),
    );
    let now = Instant::now();
    rv.online(0, full("alice@a.example/r1"), false, now);
    let Some(Output::Iq { token, .. }) = rv.poll_output() else {
        panic!("roster first")
    };
    rv.iq_result(token, Err(IqError::Timeout(Duration::from_secs(10))), now);
    let Some(Output::Send {
        stanza: Stanza::Presence(p),
        ..
    }) = rv.poll_output()
    else {
        panic!("presence even without a roster")
    };
    assert!(p.to.is_none(), "broadcast presence, never directed");
    let a = Announce::from_element(&p.payloads[0]).unwrap();
    a.verify(&bare("alice@a.example")).unwrap();
    assert_eq!(a.ring(), ring(1).ring_id());
    assert!(p.payloads[1].is("c", ns::CAPS));
    // The roster is asked again later.
    assert!(rv.poll_timeout().is_some());
}

#[test]
fn friends_are_discovered_and_strangers_forgers_and_other_rings_are_not() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        1,
    );
    let ev = h.events();
    let [FriendEvent::Up(f)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(f.jid, "bob@b.example/phone");
    assert_eq!(f.ring, "lab");
    assert_eq!(f.via, "alice@a.example");
    assert_eq!(f.fingerprint, node(2).public().fingerprint().to_hex());
    assert_eq!(f.address, node(2).public().overlay_address().to_string());
    // Subscription `from` counts.
    h.presence_from(
        "carol@a.example/x",
        vec![announce(3, 1, "carol@a.example")],
        1,
    );
    assert_eq!(h.events().len(), 1);
    // Subscription `to` and strangers do not.
    h.presence_from(
        "dave@a.example/x",
        vec![announce(4, 1, "dave@a.example")],
        1,
    );
    h.presence_from("eve@e.example/x", vec![announce(5, 1, "eve@e.example")], 1);
    // bob replaying carol's announce (signed over carol's JID).
    h.presence_from(
        "bob@b.example/laptop",
        vec![announce(3, 1, "carol@a.example")],
        1,
    );
    // Another ring; our own key through another account; garbage.
    h.presence_from(
        "bob@b.example/tablet",
        vec![announce(2, 9, "bob@b.example")],
        1,
    );
    h.presence_from(
        "bob@b.example/tv",
        vec![announce(100, 1, "bob@b.example")],
        1,
    );
    let junk = Element::builder("announce", xmpp_ext::NS_CHAMBER).build();
    h.presence_from("bob@b.example/junk", vec![junk], 1);
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.rv.friends().len(), 2);
}

#[test]
fn several_resources_and_unavailable_presence() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        1,
    );
    h.presence_from(
        "bob@b.example/laptop",
        vec![announce(6, 1, "bob@b.example")],
        1,
    );
    // A second device has its own node key: refused until the user accepts it besides the
    // first (a server adding a resource with its own key looks the same).
    assert_eq!(h.events().len(), 1);
    h.rv.trust(&bare("bob@b.example"), None, true, h.at(1))
        .unwrap();
    assert_eq!(h.events().len(), 1);
    // The same presence again changes nothing.
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        2,
    );
    assert_eq!(h.events(), vec![]);
    let gone = Presence::new(Type::Unavailable).with_from(Jid::new("bob@b.example/phone").unwrap());
    h.rv.presence(0, gone, h.at(3));
    let ev = h.events();
    assert!(
        matches!(&ev[..], [FriendEvent::Down { friend, reason }] if friend.jid == "bob@b.example/phone" && reason == "went offline"),
        "{ev:?}"
    );
    assert_eq!(h.rv.friends()[0].jid, "bob@b.example/laptop");
    // Presence without an announce: chamber stopped on that device.
    h.presence_from("bob@b.example/laptop", vec![], 4);
    assert_eq!(h.events().len(), 1);
    assert!(h.rv.friends().is_empty());
}

fn probe_of(outputs: Vec<Output>) -> (u64, Iq) {
    for o in outputs {
        if let Output::Iq { iq, token, .. } = o {
            return (token, iq);
        }
    }
    panic!("no probe")
}

#[test]
fn a_silent_friend_is_pinged_and_taken_down_then_back_when_it_answers() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        0,
    );
    h.events();
    // First the grace after our own login passes (bob was seen: nothing happens).
    assert_eq!(h.rv.poll_timeout(), Some(h.at(10)));
    h.rv.handle_timeout(h.at(10));
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.rv.poll_timeout(), Some(h.at(20)));
    h.rv.handle_timeout(h.at(20));
    let (token, iq) = probe_of(h.drain());
    assert_eq!(
        iq.to().map(|j| j.to_string()),
        Some("bob@b.example/phone".into())
    );
    h.rv.iq_result(
        token,
        Err(IqError::Timeout(Duration::from_secs(10))),
        h.at(30),
    );
    let ev = h.events();
    assert!(
        matches!(&ev[..], [FriendEvent::Down { reason, .. }] if reason.contains("ghost")),
        "{ev:?}"
    );
    assert!(h.rv.friends().is_empty());
    // Still probed: it answers (it had only lost its connection and resumed).
    h.rv.handle_timeout(h.at(50));
    let (token, iq) = probe_of(h.drain());
    let pong = Iq::Result {
        from: iq.to().cloned(),
        to: None,
        id: "x".into(),
        payload: None,
    };
    h.rv.iq_result(token, Ok(pong), h.at(50));
    assert!(matches!(&h.events()[..], [FriendEvent::Up(_)]));
    // A refused ping (the server says the resource is gone) takes it down at once.
    h.rv.handle_timeout(h.at(70));
    let (token, _) = probe_of(h.drain());
    let refused = Iq::Error {
        from: None,
        to: None,
        id: "x".into(),
        error: StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            "en",
            "",
        ),
        payload: None,
    };
    h.rv.iq_result(token, Ok(refused), h.at(70));
    assert!(matches!(&h.events()[..], [FriendEvent::Down { .. }]));
    // Forgotten after ghost_keep.
    h.rv.handle_timeout(h.at(70 + 600));
    h.drain();
    assert!(h.rv.poll_timeout().is_none_or(|t| t > h.at(70 + 600)));
}

#[test]
fn after_our_session_restarts_friends_must_show_up_again() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        0,
    );
    h.presence_from(
        "carol@a.example/x",
        vec![announce(3, 1, "carol@a.example")],
        0,
    );
    h.events();
    h.rv.offline(0);
    h.rv.online(0, full("alice@a.example/r2"), false, h.at(5));
    let (token, _) = probe_of(h.drain());
    let roster = Roster {
        ver: None,
        items: vec![Item {
            jid: bare("bob@b.example"),
            name: None,
            subscription: Subscription::Both,
            ask: Default::default(),
            groups: vec![],
            approved: None,
        }],
    };
    h.rv.iq_result(token, Ok(Iq::from_result("x", Some(roster))), h.at(5));
    // carol fell off the roster: gone at once; bob shows up again: no event.
    let ev = h.events();
    assert!(
        matches!(&ev[..], [FriendEvent::Down { friend, .. }] if friend.jid == "carol@a.example/x"),
        "{ev:?}"
    );
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        6,
    );
    h.rv.handle_timeout(h.at(16));
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.rv.friends().len(), 1);
}

#[test]
fn friends_not_seen_after_a_restart_are_dropped_after_the_grace() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        0,
    );
    h.events();
    h.rv.online(0, full("alice@a.example/r2"), false, h.at(5));
    h.drain();
    h.rv.handle_timeout(h.at(15));
    let ev = h.events();
    assert!(
        matches!(&ev[..], [FriendEvent::Down { reason, .. }] if reason.contains("restarted")),
        "{ev:?}"
    );
}

#[test]
fn pings_and_disco_are_answered_for_friends_only() {
    let mut h = Harness::new();
    let ask = |from: &str, payload: Element| Iq::Get {
        from: Some(Jid::new(from).unwrap()),
        to: None,
        id: "q1".into(),
        payload,
    };
    let ping: Element = Ping.into();
    h.rv.iq_request(0, ask("bob@b.example/phone", ping.clone()), h.at(1));
    h.rv.iq_request(0, ask("eve@e.example/x", ping), h.at(1));
    let disco = Element::builder("query", ns::DISCO_INFO).build();
    h.rv.iq_request(0, ask("bob@b.example/phone", disco), h.at(1));
    let out = h.drain();
    let answers: Vec<Iq> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                stanza: Stanza::Iq(iq),
                ..
            } => Some(iq),
            _ => None,
        })
        .collect();
    assert!(matches!(&answers[0], Iq::Result { payload: None, .. }));
    assert!(
        matches!(&answers[1], Iq::Error { error, .. } if error.defined_condition == DefinedCondition::ServiceUnavailable)
    );
    let Iq::Result {
        payload: Some(info),
        ..
    } = &answers[2]
    else {
        panic!("{:?}", answers[2])
    };
    let info = xmpp_ext::caps::parse_disco_info(info).unwrap();
    assert!(xmpp_ext::caps::has_chamber_feature(&info));
}

#[test]
fn a_roster_push_removing_a_friend_takes_it_down() {
    let mut h = Harness::new();
    h.presence_from(
        "bob@b.example/phone",
        vec![announce(2, 1, "bob@b.example")],
        0,
    );
    h.events();
    let push: Element = Roster {
        ver: None,
        items: vec![Item {
            jid: bare("bob@b.example"),
            name: None,
            subscription: Subscription::Remove,
            ask: Default::default(),
            groups: vec![],
            approved: None,
        }],
    }
    .into();
    let iq = Iq::Set {
        from: None,
        to: None,
        id: "push1".into(),
        payload: push,
    };
    h.rv.iq_request(0, iq, h.at(1));
    let out = h.drain();
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(FriendEvent::Down { .. })))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            stanza: Stanza::Iq(Iq::Result { .. }),
            ..
        }
    )));
}
