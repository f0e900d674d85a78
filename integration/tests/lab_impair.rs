//! Delay and loss on a site's uplink do what they say, measured with ping through the NAT.

mod common;

use chamber_lab::topology::PROSODY_IP;
use chamber_lab::{Impairment, Lab, LabSpec, NatKind, SiteSpec};

/// Pings the Prosody address `count` times from `site`; returns (received, mean RTT in ms).
fn ping(lab: &Lab, site: &str, count: u32) -> (u32, f64) {
    let s = lab.site(site).expect("site");
    let out = s
        .host
        .command("ping")
        .args([
            "-n",
            "-q",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            &PROSODY_IP.to_string(),
        ])
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let received = text
        .split(',')
        .find(|p| p.contains("received"))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mean = text
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (received, mean)
}

#[test]
fn delay_and_loss_apply_to_a_sites_uplink_only() {
    if !common::lab_available() {
        return;
    }
    let mut slow = SiteSpec::new("slow", NatKind::PortRestrictedCone);
    slow.impair = Impairment {
        delay_ms: 50,
        loss_percent: 0.0,
    };
    let mut lossy = SiteSpec::new("lossy", NatKind::Symmetric);
    lossy.impair = Impairment {
        delay_ms: 0,
        loss_percent: 20.0,
    };
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("fast", NatKind::PortRestrictedCone),
        slow,
        lossy,
    ]);
    (spec.ejabberd, spec.coturn) = (false, false);
    let lab = Lab::up(spec).expect("lab up");

    let (got, fast) = ping(&lab, "fast", 20);
    assert_eq!(got, 20, "an unimpaired link loses nothing");
    assert!(fast < 20.0, "unimpaired RTT {fast} ms");
    let (got, slow) = ping(&lab, "slow", 20);
    assert_eq!(got, 20);
    // 50 ms each way.
    assert!(
        (95.0..160.0).contains(&slow),
        "RTT with 50 ms one-way delay: {slow} ms"
    );
    // 20 % each way: about 36 % of round trips fail.
    let (got, _) = ping(&lab, "lossy", 300);
    let lost = 100.0 * f64::from(300 - got) / 300.0;
    assert!(
        (20.0..55.0).contains(&lost),
        "round-trip loss {lost} % with 20 % per direction"
    );
}
