//! The DHT: put, get and remove across the ring, and repair when a replica holder dies.

mod common;

use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::ring::{Config, Event, RequestId};
use common::Ring;

fn key(b: u8) -> Address {
    Address::ah([b; 20])
}

/// The event answering request `id` of node `i` since `mark`.
fn answer(r: &Ring, i: usize, id: RequestId, mark: usize) -> Event {
    r.events_of(i, mark)
        .find(|e| match e {
            Event::DhtPutDone { id: x, .. }
            | Event::DhtGetDone { id: x, .. }
            | Event::DhtRemoveDone { id: x, .. } => *x == id,
            _ => false,
        })
        .cloned()
        .unwrap_or_else(|| panic!("no answer to {id:?}"))
}

fn holders(r: &Ring) -> Vec<usize> {
    (0..r.nodes.len())
        .filter(|&i| r.nodes[i].as_ref().is_some_and(|n| n.dht_len() > 0))
        .collect()
}

fn get(r: &mut Ring, i: usize, k: Address) -> Option<Vec<Vec<u8>>> {
    let mark = r.events.len();
    let id = r.with(i, |n, now| n.dht_get(now, k));
    r.run_for(Duration::from_secs(10));
    match answer(r, i, id, mark) {
        Event::DhtGetDone { values, .. } => {
            values.map(|v| v.into_iter().map(|x| x.value).collect())
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn put_get_remove() {
    let mut r = Ring::build(
        20,
        4,
        |i| Config::with_seed(i as u64),
        Duration::from_secs(60),
    );
    let k = key(0x5a);
    let mark = r.events.len();
    let id = r.with(3, |n, now| {
        n.dht_put(now, k, b"v1".to_vec(), 600, Vec::new())
    });
    r.run_for(Duration::from_secs(5));
    assert_eq!(answer(&r, 3, id, mark), Event::DhtPutDone { id, ok: true });
    // The owner and the next nearest hold it (dht_replicas = 3).
    assert_eq!(holders(&r).len(), 3);
    assert_eq!(get(&mut r, 11, k), Some(vec![b"v1".to_vec()]));

    let mark = r.events.len();
    let id = r.with(17, |n, now| n.dht_remove(now, k, b"v1".to_vec()));
    r.run_for(Duration::from_secs(5));
    assert_eq!(
        answer(&r, 17, id, mark),
        Event::DhtRemoveDone { id, ok: true }
    );
    assert!(holders(&r).is_empty(), "removed from every replica");
    assert_eq!(get(&mut r, 11, k), Some(vec![]));
    // Removing what is not there says so.
    let mark = r.events.len();
    let id = r.with(17, |n, now| n.dht_remove(now, k, b"v1".to_vec()));
    r.run_for(Duration::from_secs(10));
    assert_eq!(
        answer(&r, 17, id, mark),
        Event::DhtRemoveDone { id, ok: false }
    );
}

#[test]
fn replicas_are_repaired_when_holders_crash() {
    let mut r = Ring::build(
        24,
        5,
        |i| Config::with_seed(i as u64),
        Duration::from_secs(60),
    );
    let k = key(0xa5);
    r.with(2, |n, now| {
        n.dht_put(now, k, b"kept".to_vec(), 3600, Vec::new())
    });
    r.run_for(Duration::from_secs(5));
    let before = holders(&r);
    assert_eq!(before.len(), 3);
    // Two of the three holders crash; their peers notice after 10 s.
    for &i in before.iter().take(2) {
        r.crash(i, Duration::from_secs(10));
    }
    assert_eq!(holders(&r).len(), 1);
    r.run_for(Duration::from_secs(40));
    let after = holders(&r);
    assert_eq!(after.len(), 3, "back to three copies: {after:?}");
    assert!(r.consistent());
    let asker = (0..24)
        .find(|&i| r.nodes[i].is_some() && !after.contains(&i))
        .unwrap();
    assert_eq!(get(&mut r, asker, k), Some(vec![b"kept".to_vec()]));
}

#[test]
fn a_writer_over_its_rate_is_refused_and_others_are_not() {
    let mut r = Ring::build(
        12,
        4,
        |i| Config {
            dht_write_rate: 1.0,
            dht_write_burst: 5,
            ..Config::with_seed(i as u64)
        },
        Duration::from_secs(60),
    );
    let k = key(0x33);
    // A first value shows who holds the key; the flooder and the other writer hold nothing
    // (an owner's own writes are not limited).
    let mark = r.events.len();
    let id = r.with(0, |n, now| {
        n.dht_put(now, k, b"first".to_vec(), 600, Vec::new())
    });
    r.run_for(Duration::from_secs(5));
    assert_eq!(answer(&r, 0, id, mark), Event::DhtPutDone { id, ok: true });
    let held = holders(&r);
    let mut others = (1..r.nodes.len()).filter(|i| !held.contains(i));
    let (flooder, other) = (
        others.next().expect("a writer"),
        others.next().expect("another"),
    );
    let mark = r.events.len();
    let ids: Vec<RequestId> = (0..20u8)
        .map(|v| {
            r.with(flooder, |n, now| {
                n.dht_put(now, k, vec![v], 600, Vec::new())
            })
        })
        .collect();
    r.run_for(Duration::from_secs(5));
    let stored = ids
        .iter()
        .filter(|id| answer(&r, flooder, **id, mark) == Event::DhtPutDone { id: **id, ok: true })
        .count();
    let limited: u64 = (0..r.nodes.len())
        .filter_map(|i| r.nodes[i].as_ref())
        .map(|n| n.stats().dht_writes_limited)
        .sum();
    assert!(limited > 0, "nothing was limited ({stored} stored)");
    assert_eq!(stored, 5, "the burst, no more");
    // Another writer is served at once.
    let mark = r.events.len();
    let id = r.with(other, |n, now| {
        n.dht_put(now, k, b"other".to_vec(), 600, Vec::new())
    });
    r.run_for(Duration::from_secs(5));
    assert_eq!(
        answer(&r, other, id, mark),
        Event::DhtPutDone { id, ok: true }
    );
}

#[test]
fn a_full_key_refuses_new_values_but_keeps_refreshing_old_ones() {
    let mut r = Ring::build(
        8,
        4,
        |i| Config {
            dht_max_values_per_key: 3,
            ..Config::with_seed(i as u64)
        },
        Duration::from_secs(60),
    );
    let k = key(0x77);
    let put = |r: &mut Ring, v: &[u8]| {
        let mark = r.events.len();
        let v = v.to_vec();
        let id = r.with(2, move |n, now| n.dht_put(now, k, v, 600, Vec::new()));
        r.run_for(Duration::from_secs(5));
        answer(r, 2, id, mark) == Event::DhtPutDone { id, ok: true }
    };
    let stored: Vec<bool> = (0..5u8).map(|v| put(&mut r, &[v])).collect();
    assert_eq!(stored, [true, true, true, false, false]);
    // A value already held is refreshed, not refused.
    assert!(put(&mut r, &[1]));
    assert_eq!(get(&mut r, 5, k).map(|v| v.len()), Some(3));
    let full: u64 = (0..r.nodes.len())
        .filter_map(|i| r.nodes[i].as_ref())
        .map(|n| n.stats().dht_full)
        .sum();
    assert!(full >= 2, "{full}");
}
