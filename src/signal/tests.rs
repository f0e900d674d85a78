//! Two signallers wired by hand: offers, trickle, tie-break, resource fallback, IQ errors.

use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use tokio_xmpp::jid::FullJid;
use xmpp_ext::jingle::{IceUdpTransport, Reason};
use xmpp_ext::record::{Capabilities, NodeRecord};
use xmpp_ext::{NodeSecret, RingSecret};

use super::*;

fn jid(s: &str) -> FullJid {
    s.parse().unwrap()
}

fn record() -> NodeRecord {
    let ring = RingSecret::generate(&mut OsRng).ring_id();
    NodeRecord::new(
        &NodeSecret::generate(&mut OsRng),
        ring,
        Capabilities::empty(),
        1,
    )
}

fn transport(ufrag: &str) -> IceUdpTransport {
    IceUdpTransport {
        ufrag: Some(ufrag.into()),
        pwd: Some("asd88fgpdd777uzjYhagZg".into()),
        candidates: vec![],
    }
}

fn drain(s: &mut Signaller<FullJid>) -> Vec<SignalOutput<FullJid>> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn sends(out: &[SignalOutput<FullJid>]) -> Vec<(FullJid, xmpp_ext::jingle::Jingle, Tag)> {
    out.iter()
        .filter_map(|o| match o {
            SignalOutput::Send { to, jingle, tag } => Some((to.clone(), jingle.clone(), *tag)),
            _ => None,
        })
        .collect()
}

fn events(out: &[SignalOutput<FullJid>]) -> Vec<SignalEvent<FullJid>> {
    out.iter()
        .filter_map(|o| match o {
            SignalOutput::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn offer_trickle_answer_terminate() {
    let now = Instant::now();
    let (a_jid, b_jid) = (jid("a@x/r1"), jid("b@y/r2"));
    let mut a = Signaller::new(a_jid.clone(), SignalConfig::default());
    let mut b = Signaller::new(b_jid.clone(), SignalConfig::default());
    a.initiate(
        now,
        "s1".into(),
        vec![b_jid.clone()],
        record(),
        transport("aaaa"),
    )
    .unwrap();
    // Candidates before the offer is acknowledged are held back.
    a.trickle("s1", transport("aaaa")).unwrap();
    let out = drain(&mut a);
    let s = sends(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(
        b.handle_jingle(now, a_jid.clone(), s[0].1.clone()),
        Reply::Ack
    );
    a.handle_ack(now, s[0].2, Ok(()));
    let held = sends(&drain(&mut a));
    assert_eq!(
        held.len(),
        1,
        "the held transport-info goes out after the ack"
    );
    assert!(matches!(
        events(&drain(&mut b)).as_slice(),
        [SignalEvent::Offer { sid, .. }] if sid == "s1"
    ));
    assert_eq!(
        b.handle_jingle(now, a_jid.clone(), held[0].1.clone()),
        Reply::Ack
    );
    assert!(matches!(
        events(&drain(&mut b)).as_slice(),
        [SignalEvent::Transport { .. }]
    ));
    b.accept("s1", record(), transport("bbbb")).unwrap();
    let s = sends(&drain(&mut b));
    assert_eq!(
        a.handle_jingle(now, b_jid.clone(), s[0].1.clone()),
        Reply::Ack
    );
    assert!(matches!(
        events(&drain(&mut a)).as_slice(),
        [SignalEvent::Answer { from, .. }] if *from == b_jid
    ));
    // A stranger cannot act on the session.
    let forged = xmpp_ext::jingle::Jingle::session_terminate("s1", Reason::Success, None);
    assert_eq!(
        a.handle_jingle(now, jid("eve@z/r"), forged.clone()),
        Reply::Error(IqFailure::ItemNotFound)
    );
    assert_eq!(a.handle_jingle(now, b_jid, forged), Reply::Ack);
    assert!(matches!(
        events(&drain(&mut a)).as_slice(),
        [SignalEvent::Ended {
            remote: true,
            reason: Reason::Success,
            ..
        }]
    ));
    assert!(a.is_empty());
}

#[test]
fn a_gone_resource_is_skipped_for_the_next() {
    let now = Instant::now();
    let mut a = Signaller::new(jid("a@x/r1"), SignalConfig::default());
    let (ghost, busy, live) = (jid("b@y/ghost"), jid("b@y/busy"), jid("b@y/live"));
    a.initiate(
        now,
        "s".into(),
        vec![ghost.clone(), busy.clone(), live.clone()],
        record(),
        transport("aaaa"),
    )
    .unwrap();
    let s = sends(&drain(&mut a));
    assert_eq!(s[0].0, ghost);
    a.handle_ack(now, s[0].2, Err(IqFailure::Timeout));
    let s = sends(&drain(&mut a));
    assert_eq!(s[0].0, busy);
    a.handle_ack(now, s[0].2, Err(IqFailure::ServiceUnavailable));
    let s = sends(&drain(&mut a));
    assert_eq!(s[0].0, live);
    a.handle_ack(now, s[0].2, Err(IqFailure::ResourceConstraint));
    assert!(matches!(
        events(&drain(&mut a)).as_slice(),
        [SignalEvent::Ended {
            reason: Reason::Busy,
            remote: false,
            ..
        }]
    ));
}

#[test]
fn unanswered_offers_time_out_with_a_terminate() {
    let now = Instant::now();
    let mut a = Signaller::new(jid("a@x/r1"), SignalConfig::default());
    a.initiate(
        now,
        "s".into(),
        vec![jid("b@y/r")],
        record(),
        transport("aaaa"),
    )
    .unwrap();
    let s = sends(&drain(&mut a));
    a.handle_ack(now, s[0].2, Ok(()));
    let deadline = a.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(20));
    a.handle_timeout(deadline);
    let out = drain(&mut a);
    assert_eq!(
        sends(&out)[0].1.reason.as_ref().map(|r| r.0),
        Some(Reason::Timeout)
    );
    assert!(matches!(
        events(&out).as_slice(),
        [SignalEvent::Ended {
            reason: Reason::Timeout,
            ..
        }]
    ));
}

#[test]
fn simultaneous_offers_keep_exactly_one_session() {
    let now = Instant::now();
    let (a_jid, b_jid) = (jid("a@x/r1"), jid("b@y/r2"));
    assert!(a_jid < b_jid);
    let mut a = Signaller::new(a_jid.clone(), SignalConfig::default());
    let mut b = Signaller::new(b_jid.clone(), SignalConfig::default());
    a.initiate(
        now,
        "sa".into(),
        vec![b_jid.clone()],
        record(),
        transport("aaaa"),
    )
    .unwrap();
    b.initiate(
        now,
        "sb".into(),
        vec![a_jid.clone()],
        record(),
        transport("bbbb"),
    )
    .unwrap();
    let from_a = sends(&drain(&mut a));
    let from_b = sends(&drain(&mut b));
    // A (lower JID) refuses B's offer; B gives way to A's.
    assert_eq!(
        a.handle_jingle(now, b_jid.clone(), from_b[0].1.clone()),
        Reply::Error(IqFailure::TieBreak)
    );
    assert_eq!(
        b.handle_jingle(now, a_jid.clone(), from_a[0].1.clone()),
        Reply::Ack
    );
    let ev = events(&drain(&mut b));
    assert!(matches!(&ev[0], SignalEvent::Superseded { sid } if sid == "sb"));
    assert!(matches!(&ev[1], SignalEvent::Offer { sid, .. } if sid == "sa"));
    b.handle_ack(now, from_b[0].2, Err(IqFailure::TieBreak));
    assert!(
        drain(&mut b).is_empty(),
        "the superseded offer is already gone"
    );
    a.handle_ack(now, from_a[0].2, Ok(()));
    assert_eq!((a.len(), b.len()), (1, 1));
}

#[test]
fn iq_errors_map_and_replies_carry_jingle_conditions() {
    use tokio_xmpp::parsers::iq::Iq;
    let from = jid("b@y/r");
    for (f, back) in [
        (IqFailure::TieBreak, IqFailure::TieBreak),
        (IqFailure::ItemNotFound, IqFailure::ItemNotFound),
        (IqFailure::ServiceUnavailable, IqFailure::ServiceUnavailable),
        (IqFailure::ResourceConstraint, IqFailure::ResourceConstraint),
    ] {
        let iq = xmpp::reply(&from, "id1", &Reply::Error(f));
        let Iq::Error { error, .. } = iq else {
            panic!("an error reply");
        };
        assert_eq!(xmpp::failure(&error), back);
    }
    // A request that is not Jingle is not ours; a malformed one gets an error reply.
    let j = xmpp_ext::jingle::Jingle::session_terminate("s", Reason::Gone, None).to_element();
    let iq = Iq::Set {
        from: Some(from.clone().into()),
        to: None,
        id: "x".into(),
        payload: j.clone(),
    };
    assert!(matches!(xmpp::incoming(&iq), Some(Ok((f, _))) if f == from));
    let text = String::from(&j).replace("session-terminate", "content-add");
    let j: tokio_xmpp::minidom::Element = text.parse().unwrap();
    let iq = Iq::Set {
        from: Some(from.into()),
        to: None,
        id: "x".into(),
        payload: j,
    };
    assert!(matches!(xmpp::incoming(&iq), Some(Err(Iq::Error { .. }))));
}

#[test]
fn unanswered_transport_info_is_sent_again_then_given_up() {
    let now = Instant::now();
    let (a_jid, b_jid) = (jid("a@x/r1"), jid("b@y/r2"));
    let mut a = Signaller::new(a_jid.clone(), SignalConfig::default());
    let mut b = Signaller::new(b_jid.clone(), SignalConfig::default());
    a.initiate(
        now,
        "s1".into(),
        vec![b_jid.clone()],
        record(),
        transport("aaaa"),
    )
    .unwrap();
    let s = sends(&drain(&mut a));
    b.handle_jingle(now, a_jid, s[0].1.clone());
    a.handle_ack(now, s[0].2, Ok(()));
    b.accept("s1", record(), transport("bbbb")).unwrap();
    let s = sends(&drain(&mut b));
    a.handle_jingle(now, b_jid, s[0].1.clone());
    drain(&mut a);
    // An ICE restart announced while the stream is down: it goes out again, later each time.
    a.trickle("s1", transport("cccc")).unwrap();
    let mut s = sends(&drain(&mut a));
    let mut t = now;
    for n in 0..SignalConfig::default().transport_retries {
        a.handle_ack(t, s[0].2, Err(IqFailure::Timeout));
        assert!(sends(&drain(&mut a)).is_empty(), "not at once");
        let at = a.poll_timeout().expect("a retry is due");
        assert_eq!(at - t, Duration::from_secs(1 << n));
        t = at;
        a.handle_timeout(t);
        s = sends(&drain(&mut a));
        assert_eq!(s.len(), 1, "sent again");
        assert_eq!(s[0].1.action, xmpp_ext::jingle::Action::TransportInfo);
    }
    a.handle_ack(t, s[0].2, Err(IqFailure::Timeout));
    assert!(matches!(
        events(&drain(&mut a)).as_slice(),
        [SignalEvent::Ended {
            reason: Reason::Timeout,
            ..
        }]
    ));
    assert!(a.is_empty());
}
