use super::ice::tests::{host, relay, transport};
use super::*;
use crate::record::tests::sample as record;
use reason::REASONS;

fn alice() -> Option<Jid> {
    Some("alice@example.org/laptop".parse().unwrap())
}

fn round_trip(j: &Jingle) -> Jingle {
    let text = j.to_xml().unwrap();
    assert!(text.len() < LIMITS.max_bytes);
    Jingle::from_xml(text.as_bytes()).unwrap()
}

#[test]
fn session_initiate_round_trip() {
    let j = Jingle::session_initiate("a73sjjvkla37jfea", alice(), record(), transport());
    let back = round_trip(&j);
    assert_eq!(back, j);
    let content = back.content.unwrap();
    assert_eq!(content.name, CONTENT_NAME);
    assert_eq!(content.record.unwrap().verify(), Ok(()));
    assert_eq!(content.transport.unwrap().candidates.len(), 2);
}

#[test]
fn session_accept_round_trip() {
    let j = Jingle::session_accept(
        "s1",
        Some("bob@example.net/phone".parse().unwrap()),
        record(),
        IceUdpTransport {
            candidates: vec![],
            ..transport()
        },
    );
    assert_eq!(round_trip(&j), j);
}

#[test]
fn transport_info_round_trip() {
    let j = Jingle::transport_info(
        "s1",
        IceUdpTransport {
            ufrag: Some("8hhy".into()),
            pwd: Some("asd88fgpdd777uzjYhagZg".into()),
            candidates: vec![relay()],
        },
    );
    assert_eq!(round_trip(&j), j);
    // Trickle without credentials is allowed too.
    let bare = Jingle::transport_info(
        "s1",
        IceUdpTransport {
            candidates: vec![host()],
            ..Default::default()
        },
    );
    assert_eq!(round_trip(&bare), bare);
}

#[test]
fn session_terminate_round_trip_for_every_reason() {
    for (reason, _) in REASONS {
        let j = Jingle::session_terminate("s1", reason, Some("link failed\nafter 45 s".into()));
        assert_eq!(round_trip(&j), j);
    }
    let j = Jingle::session_terminate("s1", Reason::Success, None);
    assert_eq!(round_trip(&j), j);
}

/// XEP-0166 Example 13 (terminate with a reason), as another client would send it.
#[test]
fn parses_foreign_terminate() {
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' \
        sid='a73sjjvkla37jfea'><reason><success/><text>Sorry, gotta go!</text></reason></jingle>";
    let j = Jingle::from_xml(xml.as_bytes()).unwrap();
    assert_eq!(
        j.reason,
        Some((Reason::Success, Some("Sorry, gotta go!".into())))
    );
}

#[test]
fn actions_must_carry_what_they_need() {
    let mut no_record = Jingle::session_initiate("s", alice(), record(), transport());
    no_record.content.as_mut().unwrap().record = None;
    assert!(matches!(
        Jingle::from_element(&no_record.to_element()),
        Err(Error::Inconsistent(_))
    ));
    let mut no_pwd = Jingle::session_accept("s", alice(), record(), transport());
    no_pwd
        .content
        .as_mut()
        .unwrap()
        .transport
        .as_mut()
        .unwrap()
        .pwd = None;
    assert!(matches!(
        Jingle::from_element(&no_pwd.to_element()),
        Err(Error::Inconsistent(_))
    ));
    let mut empty = Jingle::transport_info("s", transport());
    empty.content = None;
    assert!(matches!(
        Jingle::from_element(&empty.to_element()),
        Err(Error::Inconsistent(_))
    ));
}

#[test]
fn foreign_applications_and_actions_are_refused() {
    let rtp = "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'>\
        <content creator='initiator' name='voice'>\
        <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>\
        <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='8hhy' pwd='asd88fgpdd777uzjYhagZg'/>\
        </content></jingle>";
    assert!(matches!(
        Jingle::from_xml(rtp.as_bytes()),
        Err(Error::UnexpectedElement { .. })
    ));
    let s5b = "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'>\
        <content creator='initiator' name='chamber'>\
        <transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='x'/></content></jingle>";
    assert!(matches!(
        Jingle::from_xml(s5b.as_bytes()),
        Err(Error::UnexpectedElement { .. })
    ));
    assert_eq!(
        Reason::for_error(&Jingle::from_xml(rtp.as_bytes()).unwrap_err()),
        Reason::UnsupportedApplications
    );
    assert_eq!(
        Reason::for_error(&Jingle::from_xml(s5b.as_bytes()).unwrap_err()),
        Reason::UnsupportedTransports
    );
    assert_eq!(
        Reason::for_error(&Error::BadSignature),
        Reason::SecurityError
    );
    let content_add = "<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='s'/>";
    assert!(matches!(
        Jingle::from_xml(content_add.as_bytes()),
        Err(Error::InvalidValue {
            field: "action",
            ..
        })
    ));
}

#[test]
fn malformed_jingle_is_refused() {
    let good = Jingle::session_terminate("s1", Reason::Gone, None)
        .to_xml()
        .unwrap();
    let cases = [
        good.replace("sid='s1'", "sid=''"),
        good.replace("sid='s1'", ""),
        good.replace("<gone/>", "<gone/><busy/>"),
        good.replace("<gone/>", "<vanished/>"),
        good.replace("<gone/>", ""),
        good.replace("sid='s1'", "sid='s1' initiator='@@'"),
        good.replace("xmlns='urn:xmpp:jingle:1'", "xmlns='urn:xmpp:jingle:0'"),
    ];
    for bad in &cases {
        assert_ne!(bad, &good);
        assert!(Jingle::from_xml(bad.as_bytes()).is_err(), "{bad}");
    }
    let two_contents = Jingle::transport_info("s", transport()).to_element();
    let mut two = two_contents.clone();
    two.append_child(two_contents.get_child("content", JINGLE).unwrap().clone());
    assert!(matches!(
        Jingle::from_element(&two),
        Err(Error::TooMany { .. })
    ));
}

#[test]
fn oversized_jingle_is_refused() {
    let mut t = transport();
    t.candidates = vec![host(); 30];
    let j = Jingle::transport_info("s", t);
    let text = j.to_xml().unwrap();
    let padded = text.replacen(
        "sid='s'",
        &format!("sid='s' pad='{}'", "x".repeat(LIMITS.max_bytes)),
        1,
    );
    assert!(matches!(
        Jingle::from_xml(padded.as_bytes()),
        Err(Error::TooLarge { .. })
    ));
    // Element count is bounded even when the bytes fit: 70 tiny unknown children.
    let junk: String = (0..70).map(|_| "<x/>").collect();
    let flood = text.replacen("</jingle>", &format!("{junk}</jingle>"), 1);
    assert!(matches!(
        Jingle::from_xml(flood.as_bytes()),
        Err(Error::TooMany { .. })
    ));
}
