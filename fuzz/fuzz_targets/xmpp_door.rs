//! The daemon's XMPP door, as one node sees it: stanzas (presence with ring announces, roster
//! pushes, pings, disco and `<keys/>` queries, Jingle IQs) from anyone, in any order, with
//! time passing and `chamber trust` accepting whatever key is offered. Each NUL-separated piece
//! of the input is one stanza (bounded XML parse, then xmpp-parsers), or `t` (30 s pass) or
//! `T` (trust alice's offered key). Jingle records are checked against the pins as the bridge
//! does (`node::bridge`).
//!
//! Checks: no panic; and the pinning property — a friend only ever comes up with a key pinned
//! for its bare JID at that moment, whatever the stanzas say.
#![no_main]

use std::time::{Duration, Instant};

use chamber::trust::KeySource;
use chamber::rendezvous::{FriendEvent, Output, Rendezvous, RendezvousOptions, RingMembership};
use libfuzzer_sys::fuzz_target;
use tokio_xmpp::jid::{BareJid, FullJid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::roster::{Item, Roster, Subscription};
use xmpp_ext::xml::{self, Limits};
use xmpp_ext::{NodeSecret, RingId};

/// What the daemon's door lets through (`trust::limits::MAX_STANZA_ELEMENTS`), in bytes a
/// server would carry.
const LIMITS: Limits = Limits {
    max_bytes: 64 * 1024,
    max_elements: 256,
};

fn node() -> Rendezvous {
    let me: BareJid = "me@example.org".parse().expect("literal JID");
    // The ring of the announce seeds (xmpp-ext/fuzz/corpus/announce), so friends come up.
    let ring: RingId = "b830184d15e998d686d0aa77c0f46abc28e2429770f5790774371d45ae71e2db"
        .parse()
        .expect("literal ring id");
    let mut rv = Rendezvous::new(
        NodeSecret::from_bytes(&[9; 64]),
        vec![RingMembership {
            name: "lab".into(),
            id: ring,
        }],
        vec![me],
        RendezvousOptions::default(),
    );
    let now = Instant::now();
    let bound: FullJid = "me@example.org/n".parse().expect("literal JID");
    rv.online(0, bound, false, now);
    let item = |j: &str, s| Item {
        jid: j.parse().expect("literal JID"),
        name: None,
        subscription: s,
        ask: Default::default(),
        groups: vec![],
        approved: None,
    };
    let roster = Roster {
        ver: None,
        items: vec![
            item("alice@example.org", Subscription::Both),
            item("carol@example.org", Subscription::From),
        ],
    };
    while let Some(out) = rv.poll_output() {
        if let Output::Iq { token, .. } = out {
            let answer = Iq::from_result("r", Some(roster.clone()));
            rv.iq_result(token, Ok(answer), now);
        }
    }
    rv
}

fn check(rv: &mut Rendezvous) {
    while let Some(out) = rv.poll_output() {
        if let Output::Event(FriendEvent::Up(f)) = out {
            let full: FullJid = f.jid.parse().expect("a friend's JID is a full JID");
            let pinned = rv.pinned(&full.to_bare()).expect("a friend up has a pinned key");
            assert!(
                pinned.iter().any(|k| k.to_hex() == f.fingerprint),
                "{} came up with key {} but {:?} is pinned",
                f.jid,
                f.fingerprint,
                pinned
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rv = node();
    let alice: BareJid = "alice@example.org".parse().expect("literal JID");
    let mut now = Instant::now();
    for piece in data.split(|&b| b == 0).take(32) {
        now += Duration::from_millis(100);
        match piece {
            b"t" => {
                now += Duration::from_secs(30);
                rv.handle_timeout(now);
            }
            b"T" => {
                let _ = rv.trust(&alice, None, false, now);
            }
            _ => {
                let Ok(e) = xml::parse(piece, LIMITS) else {
                    continue;
                };
                match e.name() {
                    "presence" => {
                        if let Ok(p) = Presence::try_from(e) {
                            rv.presence(0, p, now);
                        }
                    }
                    "iq" => {
                        let Ok(iq) = Iq::try_from(e) else {
                            continue;
                        };
                        // Jingle goes to the bridge, which checks a verified record's key
                        // against the pin as here; the rest goes to rendezvous.
                        match chamber::signal::xmpp::incoming(&iq) {
                            None => rv.iq_request(0, iq, now),
                            Some(Ok((from, jingle))) => {
                                let record = jingle.content.as_ref().and_then(|c| c.record.as_ref());
                                if let Some(r) = record
                                    && r.verify().is_ok()
                                    && rv.is_friend(0, &from.to_bare())
                                {
                                    let _ = rv.check_key(
                                        &from.to_bare(),
                                        r.keys().fingerprint(),
                                        KeySource::Record,
                                    );
                                }
                            }
                            Some(Err(_)) => {}
                        }
                    }
                    "message" => {
                        if let Ok(m) = Message::try_from(e) {
                            let _ = xmpp_ext::invite::Invite::from_message(&m);
                        }
                    }
                    _ => {}
                }
            }
        }
        check(&mut rv);
        let _ = rv.pins_to_save();
        let _ = rv.key_warnings();
    }
});
