//! The simulated network: one-way latency between nodes, pairs that cannot link
//! directly, and packet loss.

use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

/// Where latencies come from.
#[derive(Clone)]
pub enum Latency {
    /// Built-in heavy-tailed model: nodes sit in a few regions on a plane (distance
    /// gives up to ~150 ms one way) behind an access link whose delay is Pareto
    /// (α = 1.5, 1 ms minimum, 300 ms cap), so a few nodes are very slow.
    HeavyTailed,
    /// A square matrix of round-trip times in ms (node i uses row i mod size).
    Matrix(Vec<Vec<f32>>),
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::HeavyTailed => write!(f, "HeavyTailed"),
            Latency::Matrix(m) => write!(f, "Matrix({}×{})", m.len(), m.len()),
        }
    }
}

/// Parses a latency matrix: one row per line, whitespace- or comma-separated RTTs in ms;
/// `#` starts a comment. Rows must all have as many entries as there are rows.
pub fn parse_matrix(text: &str) -> Result<Vec<Vec<f32>>, String> {
    let rows: Vec<Vec<f32>> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<f32>()
                        .map_err(|e| format!("bad entry {t:?}: {e}"))
                })
                .collect::<Result<Vec<f32>, String>>()
        })
        .collect::<Result<_, _>>()?;
    if rows.is_empty() || rows.iter().any(|r| r.len() != rows.len()) {
        return Err("latency matrix must be square and non-empty".into());
    }
    Ok(rows)
}

/// Per-node placement for the built-in model.
#[derive(Clone, Copy, Debug)]
struct Place {
    x: f32,
    y: f32,
    access_us: f32,
}

/// The network model.
#[derive(Debug)]
pub struct Net {
    latency: Latency,
    places: Vec<Place>,
    seed: u64,
    /// Share of node pairs that cannot link directly.
    pub blocked: f64,
    /// Probability that a message is lost.
    pub loss: f64,
}

const REGIONS: [(f32, f32); 6] = [
    (0.0, 0.0),
    (60.0, 10.0),
    (120.0, 0.0),
    (30.0, 70.0),
    (100.0, 80.0),
    (150.0, 50.0),
];

impl Net {
    /// A network with `latency`, `blocked` pairs and `loss`, deterministic in `seed`.
    pub fn new(latency: Latency, blocked: f64, loss: f64, seed: u64) -> Net {
        Net {
            latency,
            places: Vec::new(),
            seed,
            blocked,
            loss,
        }
    }

    /// Places node `i` (call in index order as nodes are created).
    pub fn place(&mut self, i: usize, rng: &mut ChaCha8Rng) {
        let u = |rng: &mut ChaCha8Rng| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (cx, cy) = REGIONS[(rng.next_u64() % REGIONS.len() as u64) as usize];
        // Box–Muller for a Gaussian spread around the region centre.
        let (u1, u2) = (u(rng).max(1e-12), u(rng));
        let r = (-2.0 * u1.ln()).sqrt() * 12.0;
        let (x, y) = (
            cx + (r * (2.0 * std::f64::consts::PI * u2).cos()) as f32,
            cy + (r * (2.0 * std::f64::consts::PI * u2).sin()) as f32,
        );
        let pareto = 1000.0 / u(rng).max(1e-9).powf(1.0 / 1.5);
        let access_us = pareto.min(300_000.0) as f32;
        if self.places.len() <= i {
            self.places.resize(
                i + 1,
                Place {
                    x: 0.0,
                    y: 0.0,
                    access_us: 0.0,
                },
            );
        }
        self.places[i] = Place { x, y, access_us };
    }

    /// One-way latency between nodes `a` and `b`, microseconds (at least 100).
    pub fn one_way_us(&self, a: usize, b: usize) -> u64 {
        if a == b {
            return 100;
        }
        let us = match &self.latency {
            Latency::Matrix(m) => {
                let n = m.len();
                f64::from(m[a % n][b % n]) * 500.0
            }
            Latency::HeavyTailed => {
                let (p, q) = (self.places[a], self.places[b]);
                let d = ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt();
                f64::from(d) * 1000.0 + f64::from(p.access_us) + f64::from(q.access_us)
            }
        };
        (us as u64).max(100)
    }

    /// True when `a` and `b` cannot link directly (symmetric, fixed per pair).
    pub fn is_blocked(&self, a: usize, b: usize) -> bool {
        if self.blocked <= 0.0 || a == b {
            return false;
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let h = splitmix(self.seed ^ splitmix(((lo as u64) << 32) | hi as u64));
        ((h >> 11) as f64 / (1u64 << 53) as f64) < self.blocked
    }
}

/// SplitMix64: a cheap, well-mixed hash for per-pair decisions.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
