//! The fileshare app (`examples/fileshare`) run against lab nodes: `share` processes killed
//! on drop, `fetch` and `list` runs, random files and the fetch's JSON summary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::node_support;
use super::ring_support::Ring;

/// The fileshare binary, built once per test process.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| node_support::example_bin("fileshare"))
}

/// Node `i`'s app socket.
pub fn app_socket(ring: &Ring, i: usize) -> PathBuf {
    chamber::services::app_socket::socket_path(&ring.homes[i].socket)
}

/// `fileshare --socket <node i's> ARGS` inside node `i`'s namespace.
pub fn command(ring: &Ring, i: usize, args: &[&str]) -> Command {
    let mut c = ring.host(i).command(&bin().to_string_lossy());
    c.arg("--socket").arg(app_socket(ring, i)).args(args);
    c
}

/// Runs `fileshare ARGS` on node `i` to its end.
pub fn run(ring: &Ring, i: usize, args: &[&str]) -> Output {
    command(ring, i, args)
        .stdin(Stdio::null())
        .output()
        .expect("run fileshare")
}

/// A running `fileshare share`, SIGKILLed when dropped.
pub struct Sharer {
    pub child: Child,
    pub log: PathBuf,
}

impl Sharer {
    /// Starts `fileshare share FILES` on node `i` and waits until it serves (its files hashed
    /// and published).
    pub fn start(ring: &Ring, i: usize, files: &[&Path], log: PathBuf) -> Sharer {
        let mut args = vec!["share".to_string()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = std::fs::File::create(&log).expect("sharer log");
        let mut child = command(ring, i, &args)
            .env("FILESHARE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(out)
            .spawn()
            .expect("start fileshare share");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let t = Instant::now();
        let mut seen = String::new();
        loop {
            match lines.next() {
                Some(Ok(l)) => {
                    seen += &l;
                    seen.push('\n');
                    if l.starts_with("serving") {
                        break;
                    }
                }
                _ => panic!(
                    "fileshare share on node {i} ended before serving:\n{seen}{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
            assert!(t.elapsed() < Duration::from_secs(120), "share too slow");
        }
        // Keep draining stdout so the sharer never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Sharer { child, log }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Sharer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A file of `len` random bytes (from `/dev/urandom`, fast even in a debug build) at `path`;
/// returns its SHA-256 hex.
pub fn random_file(path: &Path, len: usize) -> String {
    use std::io::Read;
    let mut rng = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create file"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rng.read_exact(&mut buf[..n]).expect("read /dev/urandom");
        f.write_all(&buf[..n]).expect("write file");
        left -= n;
    }
    f.flush().expect("flush file");
    sha256_of(path)
}

/// Whether two files have the same bytes (read in pieces).
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    if fa.metadata().map(|m| m.len()).ok() != fb.metadata().map(|m| m.len()).ok() {
        return false;
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut x).expect("read");
        if n == 0 {
            return rb.read(&mut y[..1]).expect("read") == 0;
        }
        if rb.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}

/// A fetch's `--json` summary.
#[derive(Debug, serde::Deserialize)]
pub struct Summary {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub seconds: f64,
    pub fetched: u64,
    pub resumed: u64,
    pub mbytes_per_s: f64,
    pub holders: Vec<HolderSummary>,
}

#[derive(Debug, serde::Deserialize)]
pub struct HolderSummary {
    pub address: String,
    pub bytes: u64,
    pub error: Option<String>,
}

/// Parses a successful fetch's output, or panics with what it said.
pub fn summary(out: &Output) -> Summary {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fetch failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().expect("a summary line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary {line:?}: {e}"))
}

/// Chunks a partial fetch has written, from its sidecar (`PATH.part.json`).
pub fn chunks_done(out: &Path) -> u64 {
    let mut side = out.as_os_str().to_owned();
    side.push(".part.json");
    let Ok(b) = std::fs::read(PathBuf::from(side)) else {
        return 0;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
        return 0;
    };
    v["done"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|p| p[1].as_u64().unwrap_or(0) - p[0].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until the fetch writing `out` has at least `n` chunks in its sidecar.
pub fn wait_chunks(out: &Path, n: u64, child: &mut Child, limit: Duration) {
    let t = Instant::now();
    while chunks_done(out) < n {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the fetch ended ({st}) before {n} chunks");
        }
        assert!(t.elapsed() < limit, "fewer than {n} chunks in {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until node `i`'s `fileshare list --json` shows `hash` with `holders` holders.
pub fn wait_listed(ring: &Ring, i: usize, hash: &str, holders: usize, limit: Duration) {
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < limit {
        let out = run(ring, i, &["list", "--json"]);
        last = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let listed = last
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| {
                v["sha256"] == hash && v["holders"].as_array().is_some_and(|h| h.len() == holders)
            });
        if listed {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{hash} not listed with {holders} holders on node {i} in {limit:?}:\n{last}");
}

/// SHA-256 hex of a file (coreutils' `sha256sum`, independent of the app's hashing).
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}
