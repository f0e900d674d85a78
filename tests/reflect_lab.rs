//! Reflection against real NATs: from each site of a lab (one per NAT kind), probe coturn (two
//! addresses, RFC 5780) and ejabberd's STUN listener (one address) and check that every site is
//! classified as intended, with the right public address.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use chamber::reflect::{NatClass, NetReport, ProbeConfig, StunServer, probe};
use chamber_lab::topology::{EJABBERD_IP, STUN_PORT, STUN_PRIMARY};
use chamber_lab::{Lab, LabError, LabSpec, NatKind, Site};

/// Whether this machine can hold a lab; skips (with the reason) only when it lacks root or the
/// packages, and never in CI, where both are present.
fn lab_available() -> bool {
    match Lab::preflight() {
        Ok(()) => true,
        Err(e @ (LabError::NotRoot | LabError::MissingProgram { .. })) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the reflection lab test must run in CI: {e}");
            }
            eprintln!("SKIPPED reflect_lab (not a lab machine): {e}");
            false
        }
        Err(e) => panic!("the lab cannot start: {e}"),
    }
}

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

/// Runs the network check from the site's host, as a node there would.
fn netcheck(site: &Site) -> NetReport {
    let servers = [
        StunServer::configured(&SocketAddr::from((STUN_PRIMARY, STUN_PORT)).to_string()),
        StunServer::configured(&SocketAddr::from((EJABBERD_IP, STUN_PORT)).to_string()),
    ]
    .map(|s| s.expect("lab STUN server"));
    site.host
        .run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let local: SocketAddr = "0.0.0.0:0".parse().expect("wildcard address");
            rt.block_on(probe(&servers, local, &ProbeConfig::default()))
        })
        .expect("enter the site's namespace")
}

#[test]
fn reflect_classifies_every_site_as_intended() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::one_of_each();
    spec.prosody = false; // not needed: the STUN servers are given directly
    let lab = Lab::up(spec).expect("lab up");
    let lab_up = started.elapsed();

    let probing = Instant::now();
    let reports: Vec<(&Site, NetReport)> = std::thread::scope(|s| {
        let handles: Vec<_> = lab
            .sites()
            .iter()
            .map(|site| s.spawn(move || (site, netcheck(site))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe thread"))
            .collect()
    });
    let probe_time = probing.elapsed();

    let mut failures = Vec::new();
    for (site, report) in &reports {
        let kind = site.spec.nat;
        eprintln!("── site {} ({kind:?}) ──\n{report}", site.spec.name);
        let coturn = &report.servers[0];
        let ejabberd = &report.servers[1];
        let public: IpAddr = if kind.is_public() {
            site.addrs.host.into()
        } else {
            site.addrs.wan.into()
        };
        let want = expected(kind);
        if coturn.class != want || report.class != want {
            failures.push(format!(
                "{}: coturn says {}, report says {}, expected {want}",
                site.spec.name, coturn.class, report.class
            ));
        }
        if kind == NatKind::UdpBlocked {
            if report.reflexive.is_some() || ejabberd.class != NatClass::UdpBlocked {
                failures.push(format!("{}: UDP got through", site.spec.name));
            }
            continue;
        }
        for (name, r) in [("coturn", coturn), ("ejabberd", ejabberd)] {
            if r.reflexive.map(|a| a.ip()) != Some(public) {
                failures.push(format!(
                    "{}: {name} saw {:?}, expected {public}",
                    site.spec.name, r.reflexive
                ));
            }
        }
        // ejabberd's STUN has one address: a reflexive address, but no behaviour verdict.
        let ejabberd_want = if kind.is_public() {
            NatClass::Open
        } else {
            NatClass::Unknown
        };
        if ejabberd.class != ejabberd_want || ejabberd.other_address.is_some() {
            failures.push(format!(
                "{}: ejabberd gave {} (other address {:?})",
                site.spec.name, ejabberd.class, ejabberd.other_address
            ));
        }
        if kind != NatKind::None && !ejabberd.notes.iter().any(|n| n.contains("no alternate")) {
            failures.push(format!(
                "{}: no reason for the unknown class",
                site.spec.name
            ));
        }
    }
    let json = serde_json::to_string_pretty(&reports[1].1).expect("report as JSON");
    eprintln!("JSON report of site `{}`:\n{json}", reports[1].0.spec.name);
    eprintln!(
        "lab up {} ms, probing all sites {} ms, total {} ms",
        lab_up.as_millis(),
        probe_time.as_millis(),
        started.elapsed().as_millis()
    );
    assert!(
        failures.is_empty(),
        "misclassified:\n{}",
        failures.join("\n")
    );
    assert!(
        probe_time < Duration::from_secs(12),
        "probing took {probe_time:?}"
    );
}
