//! Small deterministic simulations of the whole ring (kept short for debug builds).

use brunet_compat::ring::RelaySelect;
use brunet_compat::sim::{Sim, SimConfig};

fn small(nodes: usize, seed: u64) -> SimConfig {
    SimConfig {
        nodes,
        seed,
        join_rate: 20.0,
        settle_s: 40.0,
        steady_s: 40.0,
        lookups_per_s: 10.0,
        dht_puts_per_s: 2.0,
        dht_gets_per_s: 5.0,
        sample_s: 5.0,
        ..SimConfig::default()
    }
}

fn run(cfg: SimConfig) -> brunet_compat::sim::Report {
    let mut sim = Sim::new(cfg);
    sim.run();
    sim.report().cloned().expect("report")
}

#[test]
fn ring_of_150_becomes_consistent_and_routes() {
    let r = run(small(150, 11));
    assert_eq!(r.consistent_end, 1.0, "{r:?}");
    assert!(r.time_to_consistent_s.is_some());
    assert!(r.lookup_success >= 0.99, "{}", r.lookup_success);
    assert!(r.dht_get_success >= 0.99, "{}", r.dht_get_success);
    assert!(r.shortcuts_mean >= 3.0, "{}", r.shortcuts_mean);
}

#[test]
fn same_seed_same_bytes() {
    let a = serde_json::to_string(&run(small(60, 5))).unwrap();
    let b = serde_json::to_string(&run(small(60, 5))).unwrap();
    assert_eq!(a, b);
    let c = serde_json::to_string(&run(small(60, 6))).unwrap();
    assert_ne!(a, c);
}

#[test]
fn blocked_pairs_get_relays_and_the_ring_stays_consistent() {
    // 30 % of pairs cannot link directly: true neighbours among them reach each other
    // through two-hop relays, with either forwarder selection.
    for (seed, select) in [(3, RelaySelect::Latency), (4, RelaySelect::Age)] {
        let cfg = SimConfig {
            blocked: 0.3,
            relay_select: select,
            ..small(80, seed)
        };
        let r = run(cfg);
        assert!(
            r.relays_up > 0 && r.relay_edges_mean > 1.0,
            "{select:?}: {r:?}"
        );
        assert_eq!(r.routable_end, 1.0, "{select:?}");
        assert_eq!(r.consistent_end, 1.0, "{select:?}");
        assert_eq!(r.consistent_steady_min, 1.0, "{select:?}");
        assert!(
            r.lookup_success >= 0.999,
            "{select:?}: {}",
            r.lookup_success
        );
        assert!(
            r.dht_get_success >= 0.999,
            "{select:?}: {}",
            r.dht_get_success
        );
    }
}

#[test]
fn dht_survives_churn() {
    let cfg = SimConfig {
        churn_frac: 0.2,
        churn_period_s: 40.0,
        steady_s: 60.0,
        detect_s: (5.0, 10.0),
        ..small(100, 9)
    };
    let r = run(cfg);
    assert!(r.departures >= 15, "{}", r.departures);
    assert!(r.dht_get_success >= 0.9, "{}", r.dht_get_success);
    assert!(r.lookup_success >= 0.9, "{}", r.lookup_success);
}

#[test]
fn wire_mode_runs_the_same_ring_through_the_codec() {
    let typed = run(small(60, 8));
    let wire = run(SimConfig {
        wire: true,
        ..small(60, 8)
    });
    // Every message went through encode and decode and came out the same.
    assert_eq!(wire.events, typed.events);
    assert_eq!(wire.lookup_success, typed.lookup_success);
    assert_eq!(wire.consistent_end, 1.0);
    assert!(wire.wire && !typed.wire);
    assert_eq!(typed.bytes_per_node_s, 0.0);
    // Real sizes: statuses carry six NodeInfo maps (~60 bytes each).
    let status = wire.bytes_by_kind["status"];
    assert!((300.0..700.0).contains(&status), "{status}");
    assert!(wire.bytes_per_msg > 100.0, "{}", wire.bytes_per_msg);
}
