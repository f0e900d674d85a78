//! Bad lab configuration fails with a message that says what to do. One test function: the stale
//! namespace it creates would make any lab started alongside it refuse to start.

mod common;

use chamber_lab::topology::{STUN_PORT, STUN_PRIMARY};
use chamber_lab::{Lab, LabError, LabSpec, NatKind, SiteSpec};

#[test]
fn bad_configuration_is_explained() {
    if !common::lab_available() {
        return;
    }
    // A missing package names the package and the install script.
    let e = Lab::check_programs(std::ffi::OsStr::new("/nonexistent"))
        .expect_err("nothing is installed there");
    assert!(matches!(e, LabError::MissingProgram { .. }));
    assert!(e.to_string().contains("install-deps.sh"), "{e}");

    // A port already taken inside the lab is named, with where to look.
    let mut spec = LabSpec::with_sites(vec![SiteSpec::new("home", NatKind::FullCone)]);
    (spec.prosody, spec.ejabberd, spec.coturn) = (false, false, false);
    let lab = Lab::network(spec).expect("lab network");
    let held = lab
        .public()
        .run(move || std::net::UdpSocket::bind((STUN_PRIMARY, STUN_PORT)))
        .expect("enter")
        .expect("bind the STUN port");
    let dir = lab.dir().join("coturn");
    std::fs::create_dir_all(&dir).expect("dir");
    let e =
        chamber_lab::coturn::start(lab.public(), &dir, "secret").expect_err("the port is taken");
    assert!(matches!(e, LabError::PortInUse { .. }), "{e}");
    assert!(
        e.to_string().contains("already in use") && e.to_string().contains("ip netns pids"),
        "{e}"
    );
    drop(held);
    drop(lab);

    // Namespaces left by a dead process stop the next lab, and `clean` removes them.
    let stale = "chl999999999x0-pub";
    chamber_lab::cmd::run("ip", ["netns", "add", stale]).expect("make a stale namespace");
    let e = Lab::preflight().expect_err("stale namespaces are refused");
    let removed = chamber_lab::clean(true);
    assert!(matches!(e, LabError::StaleNamespaces { .. }), "{e}");
    assert!(
        e.to_string().contains("chamber-lab clean") && e.to_string().contains(stale),
        "{e}"
    );
    assert!(
        removed.iter().any(|n| n == stale),
        "clean removed {removed:?}"
    );
    Lab::preflight().expect("clean after removal");
}
