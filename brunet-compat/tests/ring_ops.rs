//! Arbitrary operation sequences against a few nodes never panic (the `ring_ops` fuzz
//! target's harness, run here on seeded pseudo-random programs and on hand-made ones).

use brunet_compat::sim::ops::run_ops;

/// SplitMix64, for reproducible program bytes without a dependency.
fn program(seed: u64, len: usize) -> Vec<u8> {
    let mut z = seed;
    (0..len)
        .map(|_| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (x ^ (x >> 31)) as u8
        })
        .collect()
}

#[test]
fn random_programs_never_panic() {
    for seed in 0..300 {
        run_ops(&program(seed, 64 + (seed as usize * 37) % 1500));
    }
}

#[test]
fn a_ring_forms_then_everything_is_thrown_at_it() {
    // Link 0–1, 1–2, 2–3, 3–0; pass time and deliver everything in order, repeatedly.
    let mut p = vec![7];
    for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 0)] {
        p.extend([0, a, b, 1]);
    }
    for round in 0..40u8 {
        for k in 0..30u16 {
            p.extend([3, 0]);
            p.extend(k.to_be_bytes());
        }
        p.extend([8, round % 4, 0, 50]);
        p.extend([10 + round % 5, round % 4, round, round]);
    }
    // Then mangled bytes, duplicates, drops and departures.
    for k in 0..60u16 {
        p.extend([7, (k % 4) as u8]);
        p.extend(k.to_be_bytes());
        p.extend(k.to_be_bytes());
        p.push(k as u8);
        p.extend([4, 0, 0, k as u8]);
        p.extend([5, 0, 0, 1]);
    }
    p.extend([15, 2, 0xff, 8, 0, 0, 200]);
    run_ops(&p);
}
