//! A friend whose Noise key is not the one its signed record announces is refused, whichever
//! side it is on, over each lab server: the honest end sees `LinkError::Refused` and no link
//! ever carries data.

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{LinkError, LinkerConfig, PathHint};
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Turn, on, runtime_in, secret};

fn linker() -> LinkerConfig {
    let mut c = link_common::lab_linker(PathHint::Unknown);
    // The honest end waits this long for a handshake the liar cannot answer.
    c.tunnel.handshake_timeout = Duration::from_secs(5);
    c
}

fn refused(r: &Result<(), LinkError>) -> bool {
    matches!(r, Err(LinkError::Refused { .. }))
}

fn keys_must_match_records(domain: &'static str) {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![
        SiteSpec::new("honest", NatKind::PortRestrictedCone),
        SiteSpec::new("liar", NatKind::FullCone),
    ]);
    spec.prosody = domain == ALPHA;
    spec.ejabberd = !spec.prosody;
    spec.coturn = spec.prosody;
    let lab = Lab::up(spec).expect("lab up");
    let rt_h = runtime_in(&lab.site("honest").expect("site").host);
    let rt_l = runtime_in(&lab.site("liar").expect("site").host);
    let cfg = common::account(&lab, 1, domain, TlsMode::StartTls);
    let honest = on(&rt_h, async move {
        link_common::start(cfg, &secret(1), &secret(1), Turn::Offered, linker()).await
    });
    // The liar's record announces key 2; its handshakes use key 3.
    let cfg = common::account(&lab, 2, domain, TlsMode::StartTls);
    let liar = on(&rt_l, async move {
        link_common::start(cfg, &secret(2), &secret(3), Turn::Offered, linker()).await
    });
    let honest_in = link_common::forward_incoming(&rt_h, honest.incoming);
    let liar_in = link_common::forward_incoming(&rt_l, liar.incoming);

    // The honest friend offers: the liar cannot read the initiation, no handshake completes.
    let t0 = Instant::now();
    let (l, peer) = (honest.linker.clone(), liar.jid.clone());
    let r = on(
        &rt_h,
        async move { l.connect(vec![peer]).await.map(|_| ()) },
    );
    eprintln!("honest → liar: {r:?} after {:?}", t0.elapsed());
    assert!(refused(&r), "the honest initiator must refuse: {r:?}");
    let theirs = liar_in
        .recv_timeout(Duration::from_secs(20))
        .expect("the liar's side ends too");
    assert!(theirs.is_err(), "no link for the liar");

    // The liar offers: the honest friend sees its key in the initiation and refuses at once.
    let t0 = Instant::now();
    let (l, peer) = (liar.linker.clone(), honest.jid.clone());
    let r = on(
        &rt_l,
        async move { l.connect(vec![peer]).await.map(|_| ()) },
    );
    eprintln!("liar → honest: {r:?} after {:?}", t0.elapsed());
    assert!(refused(&r), "the liar is told it was refused: {r:?}");
    match honest_in.recv_timeout(Duration::from_secs(20)) {
        Ok(Err(e @ LinkError::Refused { .. })) => eprintln!("honest side: {e}"),
        Ok(Err(e)) => panic!("the honest responder must refuse, not: {e}"),
        Ok(Ok(_)) => panic!("the honest responder took a link from a liar"),
        Err(e) => panic!("the honest responder reported nothing: {e}"),
    }
    eprintln!("done in {:?}", started.elapsed());
    drop((rt_h, rt_l));
}

#[test]
fn mismatched_keys_are_refused_over_prosody() {
    keys_must_match_records(ALPHA);
}

#[test]
fn mismatched_keys_are_refused_over_ejabberd() {
    keys_must_match_records(BETA);
}
