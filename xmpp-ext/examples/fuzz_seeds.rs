//! Writes the seed corpora of `fuzz/` from the same kind of data the round-trip tests use.
//!
//! `cargo run -p xmpp-ext --example fuzz_seeds` (re)writes `xmpp-ext/fuzz/corpus/<target>/`.
//! Deterministic: the same build writes the same files.

use std::fs;
use std::path::{Path, PathBuf};

use minidom::Element;
use rand::SeedableRng;
use rand::rngs::StdRng;
use xmpp_ext::announce::Announce;
use xmpp_ext::caps;
use xmpp_ext::extdisco::{self, Action, ExternalService, ServiceKind, Transport};
use xmpp_ext::invite::Invite;
use xmpp_ext::jingle::{Candidate, CandidateType, IceUdpTransport, Jingle, Protocol, Reason};
use xmpp_ext::record::{Capabilities, NodeRecord};
use xmpp_ext::{NodeSecret, RingSecret, xml};

/// The recipient key the `invite` fuzz target opens with.
const FUZZ_RECIPIENT: [u8; 64] = [7; 64];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"));
    let mut rng = StdRng::seed_from_u64(2024);
    let alice = NodeSecret::generate(&mut rng);
    let bob = NodeSecret::generate(&mut rng);
    let ring = RingSecret::generate(&mut rng);
    let alice_jid = "alice@example.org".parse()?;

    let announce = Announce::new(&alice, ring.ring_id(), &alice_jid);
    write(&dir, "announce", "valid", &announce.to_element())?;
    write(
        &dir,
        "announce",
        "other-node",
        &Announce::new(&bob, ring.ring_id(), &"bob@example.net".parse()?).to_element(),
    )?;

    let records = [
        NodeRecord::new(&alice, ring.ring_id(), Capabilities::RELAY, 1),
        NodeRecord::new(&bob, ring.ring_id(), Capabilities::all(), u64::MAX),
        NodeRecord::new(
            &bob,
            ring.ring_id(),
            Capabilities::from_bits_retain(1 << 31),
            0,
        ),
    ];
    for (i, r) in records.iter().enumerate() {
        write(&dir, "record_xml", &format!("record-{i}"), &r.to_element())?;
        write_bytes(&dir, "record_binary", &format!("record-{i}"), &r.to_bytes())?;
    }

    let our_caps: Element = caps::presence_caps()?.into();
    write(&dir, "caps_disco", "caps", &our_caps)?;
    write(
        &dir,
        "caps_disco",
        "disco-info",
        &caps::disco_info(None).into(),
    )?;
    write_bytes(
        &dir,
        "caps_disco",
        "xep-0115-complex",
        include_str!("../tests/data/xep-0115-complex.xml").as_bytes(),
    )?;

    let stun = ExternalService {
        kind: ServiceKind::Stun,
        transport: Transport::Udp,
        host: "turn.lab".into(),
        port: Some(3478),
        username: None,
        password: None,
        expires: None,
        restricted: false,
        name: None,
        action: Action::Add,
    };
    let turn = ExternalService {
        kind: ServiceKind::Turn,
        username: Some("1700003600".into()),
        password: Some("kM3dDhVx1yD+6bKQ1d0Cw6rZ3kE=".into()),
        expires: Some("2023-11-14T23:13:20Z".parse()?),
        restricted: true,
        ..stun.clone()
    };
    let turns = ExternalService {
        kind: ServiceKind::Turns,
        transport: Transport::Tcp,
        host: "2001:db8::1".into(),
        port: None,
        name: Some("relay".into()),
        action: Action::Modify,
        ..stun.clone()
    };
    write(
        &dir,
        "extdisco",
        "prosody",
        &extdisco::services_response(&[stun, turn.clone()]),
    )?;
    write(
        &dir,
        "extdisco",
        "turns",
        &extdisco::services_response(&[turns]),
    )?;
    let mut credentials = Element::builder("credentials", "urn:xmpp:extdisco:2").build();
    credentials.append_child(turn.to_element());
    write(&dir, "extdisco", "credentials", &credentials)?;

    let host = Candidate {
        component: 1,
        foundation: "1".into(),
        generation: 0,
        id: "el0747fg11".into(),
        ip: "10.0.1.1".parse()?,
        port: 8998,
        priority: 2_130_706_431,
        protocol: Protocol::Udp,
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        network: Some(1),
    };
    let relay = Candidate {
        id: "y3s2b30v3r".into(),
        foundation: "3+f/x".into(),
        ip: "2001:db8::9".parse()?,
        port: 49152,
        priority: 16_777_215,
        kind: CandidateType::Relay,
        rel_addr: Some("192.0.2.3".parse()?),
        rel_port: Some(45664),
        network: None,
        ..host.clone()
    };
    let transport = IceUdpTransport {
        ufrag: Some("8hhy".into()),
        pwd: Some("asd88fgpdd777uzjYhagZg".into()),
        candidates: vec![host.clone(), relay],
    };
    let sessions = [
        (
            "session-initiate",
            Jingle::session_initiate(
                "a73sjjvkla37jfea",
                Some("alice@example.org/laptop".parse()?),
                records[0].clone(),
                transport.clone(),
            ),
        ),
        (
            "session-accept",
            Jingle::session_accept(
                "a73sjjvkla37jfea",
                Some("bob@example.net/phone".parse()?),
                records[1].clone(),
                transport.clone(),
            ),
        ),
        (
            "transport-info",
            Jingle::transport_info(
                "a73sjjvkla37jfea",
                IceUdpTransport {
                    candidates: vec![host],
                    ..Default::default()
                },
            ),
        ),
        (
            "session-terminate",
            Jingle::session_terminate(
                "a73sjjvkla37jfea",
                Reason::FailedTransport,
                Some("no path".into()),
            ),
        ),
    ];
    for (name, j) in &sessions {
        write(&dir, "jingle", name, &j.to_element())?;
    }

    let recipient = NodeSecret::from_bytes(&FUZZ_RECIPIENT);
    for (i, name) in ["climbing club", ""].iter().enumerate() {
        let invite = Invite::seal(
            &mut rng,
            &alice,
            &alice_jid,
            &recipient.public(),
            name,
            &ring,
            None,
        )?;
        write(&dir, "invite", &format!("invite-{i}"), &invite.to_element())?;
    }
    Ok(())
}

fn write(
    dir: &Path,
    target: &str,
    name: &str,
    e: &Element,
) -> Result<(), Box<dyn std::error::Error>> {
    write_bytes(dir, target, name, xml::to_string(e)?.as_bytes())
}

fn write_bytes(
    dir: &Path,
    target: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), Box<dyn std::error::Error>> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    fs::write(d.join(format!("seed-{name}")), bytes)?;
    Ok(())
}
