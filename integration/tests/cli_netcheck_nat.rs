//! `chamber netcheck --json`, the real binary, run inside each site of a lab with one site per
//! NAT kind: every node logs into its accounts on both servers (split across the federation),
//! learns the STUN/TURN services from XEP-0215, and reports the right NAT class — UDP blocked
//! included.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::reflect::NatClass;
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind};
use node_support::NodeHome;

fn expected(kind: NatKind) -> NatClass {
    match kind {
        NatKind::None => NatClass::Open,
        NatKind::FullCone => NatClass::FullCone,
        NatKind::RestrictedCone => NatClass::RestrictedCone,
        NatKind::PortRestrictedCone => NatClass::PortRestrictedCone,
        NatKind::Symmetric => NatClass::Symmetric,
        NatKind::UdpBlocked => NatClass::UdpBlocked,
    }
}

#[test]
fn cli_netcheck_reports_every_nat_class() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let lab = Lab::up(LabSpec::one_of_each()).expect("lab up");
    node_support::chamber_bin();
    let lab_up = started.elapsed();

    let results: Vec<(NatKind, serde_json::Value, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = lab
            .sites()
            .iter()
            .enumerate()
            .map(|(i, site)| {
                let lab = &lab;
                s.spawn(move || {
                    let k = i as u32 + 1;
                    let home = NodeHome::new(lab, &site.spec.name);
                    // Half the sites on each server first, each with one account on both.
                    let (first, second) = if i % 2 == 0 {
                        (ALPHA, BETA)
                    } else {
                        (BETA, ALPHA)
                    };
                    let tls = if i % 3 == 0 {
                        TlsMode::Direct
                    } else {
                        TlsMode::StartTls
                    };
                    home.add_account(&site.host, lab, k, first, tls);
                    home.add_account(&site.host, lab, k, second, TlsMode::StartTls);
                    let t = Instant::now();
                    let out = home.run(&site.host, &["netcheck", "--json"], "");
                    let took = t.elapsed();
                    assert!(
                        out.status.success(),
                        "{}: netcheck failed: {}",
                        site.spec.name,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let v: serde_json::Value =
                        serde_json::from_slice(&out.stdout).expect("netcheck JSON");
                    (site.spec.nat, v, took)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("site thread"))
            .collect()
    });

    let mut failures = Vec::new();
    for (kind, v, took) in &results {
        let class = v["class"].as_str().unwrap_or("?");
        let want = expected(*kind).as_str();
        eprintln!(
            "{:<22} class {class:<22} reflexive {:<22} netcheck {} ms",
            kind.as_str(),
            v["report"]["reflexive"].as_str().unwrap_or("-"),
            took.as_millis()
        );
        if class != want {
            failures.push(format!(
                "{}: reported {class}, expected {want}",
                kind.as_str()
            ));
        }
        for a in v["accounts"].as_array().into_iter().flatten() {
            let services = a["services"].as_array().cloned().unwrap_or_default();
            let has = |kind: &str| services.iter().any(|s| s["kind"] == kind);
            if a["login"].is_null() || !has("stun") || !has("turn") {
                failures.push(format!("{}: account {a}", kind.as_str()));
            }
            if a.to_string().contains("password\"") {
                failures.push(format!("{}: a TURN password was printed", kind.as_str()));
            }
        }
        // Every STUN server probed was offered by an XMPP server (XEP-0215), per server.
        for s in v["report"]["servers"].as_array().into_iter().flatten() {
            if s["source"]["kind"] != "xep0215" {
                failures.push(format!("{}: server not from XEP-0215: {s}", kind.as_str()));
            }
        }
    }
    eprintln!(
        "lab up {} ms, total {} ms",
        lab_up.as_millis(),
        started.elapsed().as_millis()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
