//! Links still form over a bad uplink: 5 % loss and 50 ms each way on one site (added in the
//! lab's internet, so XMPP, STUN, TURN and ICE all suffer it), to a friend it can punch
//! through to (a direct path) and to one it cannot (TURN).

#[path = "common/mod.rs"]
mod common;
#[path = "link_common.rs"]
mod link_common;

use std::time::{Duration, Instant};

use chamber::account::TlsMode;
use chamber::link::{PathHint, PathKind};
use chamber_lab::topology::ALPHA;
use chamber_lab::{Impairment, Lab, LabSpec, NatKind, SiteSpec};
use link_common::{Turn, on, runtime_in, secret};

#[test]
fn links_form_over_a_lossy_slow_uplink() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut bad = SiteSpec::new("bad", NatKind::PortRestrictedCone);
    bad.impair = Impairment {
        delay_ms: 50,
        loss_percent: 5.0,
    };
    let mut spec = LabSpec::with_sites(vec![
        bad,
        SiteSpec::new("cone", NatKind::FullCone),
        SiteSpec::new("sym", NatKind::Symmetric),
    ]);
    spec.ejabberd = false;
    let lab = Lab::up(spec).expect("lab up");
    let lc = || link_common::lab_linker(PathHint::Unknown);
    let mut runtimes = Vec::new();
    let mut friends = Vec::new();
    for (k, site) in [(1, "bad"), (2, "cone"), (3, "sym")] {
        let rt = runtime_in(&lab.site(site).expect("site").host);
        let cfg = common::account(&lab, k, ALPHA, TlsMode::StartTls);
        let f = on(&rt, async move {
            let s = secret(k as u8);
            link_common::start(cfg, &s, &s, Turn::Offered, lc()).await
        });
        friends.push(f);
        runtimes.push(rt);
    }
    eprintln!("friends online after {:?}", started.elapsed());
    for (i, f) in friends.iter_mut().enumerate().skip(1) {
        let incoming = std::mem::replace(&mut f.incoming, tokio::sync::mpsc::channel(1).1);
        let rt = &runtimes[i];
        rt.spawn(async move {
            let mut incoming = incoming;
            while let Some(Ok((_, link))) = incoming.recv().await {
                let _ = link_common::echo_watched(link);
            }
        });
    }
    let linker = friends[0].linker.clone();
    let peers = [
        (friends[1].jid.clone(), "full cone", true),
        (friends[2].jid.clone(), "symmetric", false),
    ];
    // Both at once, as a node would.
    let results = on(&runtimes[0], async move {
        let mut tasks = Vec::new();
        for (jid, name, direct) in peers {
            let l = linker.clone();
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let r = match l.connect(vec![jid]).await {
                    Ok(mut link) => {
                        let setup = t0.elapsed();
                        let echoed = link_common::ping(&mut link, 40).await;
                        Ok((setup, echoed, link.status()))
                    }
                    Err(e) => Err(e.to_string()),
                };
                (name, direct, r)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    for (name, direct, r) in results {
        let (setup, echoed, status) = r.unwrap_or_else(|e| panic!("bad ↔ {name}: {e}"));
        let path = status.path.expect("a path");
        eprintln!(
            "bad ↔ {name}: {:?} in {setup:?}, rtt {:?}, echoed {echoed}",
            path.kind, status.rtt
        );
        assert!(echoed, "bad ↔ {name}: data crosses");
        assert_eq!(
            path.kind.is_direct(),
            direct,
            "bad ↔ {name}: {:?}",
            path.kind
        );
        if !direct {
            assert_eq!(path.kind, PathKind::TurnRelay);
        }
        assert!(setup < Duration::from_secs(25));
    }
    eprintln!("done in {:?}", started.elapsed());
}
