use brunet_compat::address::Address;
use tokio_xmpp::minidom::Element;

use super::*;
use crate::runtime::{LinkView, PeerView};

fn addr(top: u8) -> String {
    let mut b = [0u8; 20];
    b[0] = top;
    Address::from_bytes(b).to_string()
}

fn link(kind: &str) -> Option<LinkView> {
    Some(LinkView {
        kind: kind.into(),
        local: None,
        remote: None,
        rtt_ms: Some(1.25),
        tx_bytes: 0,
        rx_bytes: 0,
        signalled: "ring".into(),
        age_s: 3,
    })
}

/// Us at 1/16; a direct near peer at 1/2, a TURN shortcut at 3/4, a relayed one at 1/4 via the
/// one at 1/2.
fn view() -> RingView {
    let peer = |top, roles: &str, link, via: Option<u8>| PeerView {
        address: addr(top),
        roles: roles.into(),
        link,
        relay_via: via.map(addr),
    };
    RingView {
        name: "a<b&c".into(),
        address: addr(0x10),
        connected: true,
        size_estimate: 4.2,
        left: vec![addr(0x40)],
        right: vec![addr(0xC0)],
        peers: vec![
            peer(0x80, "leaf|near", link("direct-host"), None),
            peer(0xC0, "shortcut", link("turn"), None),
            peer(0x40, "near", None, Some(0x80)),
        ],
        ..RingView::default()
    }
}

#[test]
fn members_are_in_ring_order_from_us_with_their_reach() {
    let m = members(&view());
    let tops: Vec<f64> = m.iter().map(|m| m.position).collect();
    assert_eq!(tops, [0.0625, 0.25, 0.5, 0.75]);
    assert_eq!(m[0].reach, Reach::Us);
    assert_eq!(m[1].reach, Reach::Relay(addr(0x80)));
    assert_eq!(m[2].reach, Reach::Direct("direct-host".into()));
    assert_eq!(m[3].reach, Reach::Turn);
    assert_eq!(position("not an address"), None);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json[1]["reach"]["kind"], "relay");
    assert_eq!(json[1]["reach"]["detail"], addr(0x80));
    assert_eq!(json[0]["reach"]["kind"], "us");
}

#[test]
fn text_lists_members_roles_links_and_neighbours() {
    let t = text(&view());
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("ring a<b&c: 4 members known, about 4 in all, connected"));
    assert!(
        lines[2].contains("6.2%") && lines[2].contains("(this node)"),
        "{t}"
    );
    assert!(
        lines[3].contains("relay via") && lines[3].ends_with("← left 1"),
        "{t}"
    );
    assert!(lines[4].contains("leaf|near") && lines[4].contains("direct-host, 1.2 ms"));
    assert!(
        lines[5].contains("TURN relay") && lines[5].ends_with("← right 1"),
        "{t}"
    );
}

#[test]
fn svg_is_well_formed_with_a_dot_per_member_and_a_line_per_link() {
    let doc = svg(&view());
    let root: Element = doc.parse().expect("well-formed SVG");
    let count = |name: &str| root.children().filter(|c| c.name() == name).count();
    // The ring's circle and four members.
    assert_eq!(count("circle"), 5);
    // Direct and TURN links, plus the legend's three samples.
    assert_eq!(count("line"), 5);
    assert_eq!(count("polyline"), 1);
    let ours: Vec<&Element> = root
        .children()
        .filter(|c| c.name() == "circle" && c.attr("fill") == Some("#1565c0"))
        .collect();
    assert_eq!(ours.len(), 1);
    // Our dot sits at 1/16 of the way round, clockwise from the top.
    let x: f64 = ours[0].attr("cx").unwrap().parse().unwrap();
    let y: f64 = ours[0].attr("cy").unwrap().parse().unwrap();
    let a = std::f64::consts::TAU / 16.0;
    assert!((x - (260.0 + 180.0 * a.sin())).abs() < 0.1, "{x}");
    assert!((y - (270.0 - 180.0 * a.cos())).abs() < 0.1, "{y}");
    let colours: Vec<&str> = root
        .children()
        .filter(|c| c.name() == "line")
        .filter_map(|c| c.attr("stroke"))
        .collect();
    assert_eq!(&colours[..2], ["#2e7d32", "#ef6c00"]);
    assert!(doc.contains("ring a&lt;b&amp;c"));
}
