//! Every NAT kind of the lab is what it claims to be, as judged by an independent RFC 5780 client
//! (coturn's `turnutils_natdiscovery`), run from each site's host against coturn's two addresses.

mod common;

use chamber_lab::topology::STUN_PRIMARY;
use chamber_lab::{Lab, LabSpec, NatKind};

/// What `turnutils_natdiscovery -m -f` concluded.
#[derive(Debug, PartialEq)]
struct Verdict {
    mapping: Option<&'static str>,
    filtering: Option<&'static str>,
    reflexive_is_local: bool,
}

fn discover(lab: &Lab, site: &str) -> Verdict {
    let s = lab.site(site).expect("site exists");
    let out = s
        .host
        .exec(
            "turnutils_natdiscovery",
            ["-m", "-f", &STUN_PRIMARY.to_string()],
        )
        .unwrap_or_else(|e| panic!("natdiscovery from {site}: {e}"));
    let pick = |kind: &str| -> Option<&'static str> {
        let line = out
            .lines()
            .find(|l| l.starts_with("NAT with") && l.contains(kind))?;
        [
            "Endpoint Independent",
            "Address and Port Dependent",
            "Address Dependent",
        ]
        .into_iter()
        .find(|b| line.contains(b))
    };
    let host = s.addrs.host.to_string();
    Verdict {
        mapping: pick("Mapping"),
        filtering: pick("Filtering"),
        reflexive_is_local: out
            .lines()
            .any(|l| l.contains("UDP reflexive addr") && l.contains(&format!(" {host}:"))),
    }
}

#[test]
fn each_nat_kind_is_classified_as_intended_by_an_independent_client() {
    if !common::lab_available() {
        return;
    }
    let mut spec = LabSpec::one_of_each();
    spec.prosody = false;
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let (ei, apd, ad) = (
        Some("Endpoint Independent"),
        Some("Address and Port Dependent"),
        Some("Address Dependent"),
    );
    for kind in NatKind::ALL {
        let v = discover(&lab, kind.as_str());
        let expected = match kind {
            NatKind::None => Verdict {
                mapping: ei,
                filtering: ei,
                reflexive_is_local: true,
            },
            NatKind::FullCone => Verdict {
                mapping: ei,
                filtering: ei,
                reflexive_is_local: false,
            },
            NatKind::RestrictedCone => Verdict {
                mapping: ei,
                filtering: ad,
                reflexive_is_local: false,
            },
            NatKind::PortRestrictedCone => Verdict {
                mapping: ei,
                filtering: apd,
                reflexive_is_local: false,
            },
            NatKind::Symmetric => Verdict {
                mapping: apd,
                filtering: apd,
                reflexive_is_local: false,
            },
            NatKind::UdpBlocked => Verdict {
                mapping: None,
                filtering: None,
                reflexive_is_local: false,
            },
        };
        assert_eq!(v, expected, "site {kind}");
    }
}
