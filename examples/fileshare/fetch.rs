//! `fileshare fetch`: find the holders, fetch chunks from all of them in parallel into
//! `PATH.part` (its sidecar `PATH.part.json` lists the chunks written), check the SHA-256,
//! rename. A holder that fails hands its chunks back to the others; with none left the fetch
//! stops and the same command resumes it.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use brunet_compat::address::Address;
use chamber::api::{Client, RingStream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::proto::{self, Hash, Record, Request};

mod sidecar;
use sidecar::{Sidecar, resume_state, suffixed};

/// Bytes per chunk: the unit of work handed to a holder and recorded as done.
pub const CHUNK: u64 = 1 << 20;
/// Streams opened to each holder (each asks for one chunk at a time).
const STREAMS_PER_HOLDER: usize = 3;
/// A holder silent this long while we wait for its bytes has failed.
const STALL: Duration = Duration::from_secs(20);
/// How often the sidecar is written while chunks arrive.
const SAVE_EVERY: Duration = Duration::from_millis(250);
/// Broken streams to one holder before it is given up.
const MAX_FAILURES: u32 = 3;

/// What `fetch` was asked.
pub struct Options {
    pub target: String,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub limit_rate: Option<u64>,
}

/// Where a fetch stands, shared by its workers.
struct Work {
    queue: Mutex<VecDeque<u64>>,
    remaining: AtomicU64,
}

impl Work {
    /// The next chunk to fetch; `None` once every chunk is done. Waits while the last chunks
    /// are in flight elsewhere (a failure puts them back).
    async fn take(&self) -> Option<u64> {
        loop {
            if self.remaining.load(Ordering::Acquire) == 0 {
                return None;
            }
            if let Some(c) = self.queue.lock().ok()?.pop_front() {
                return Some(c);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn put_back(&self, chunk: u64) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_front(chunk);
        }
    }
}

/// Spreads requests so the whole fetch stays under a rate.
struct Limiter {
    rate: u64,
    start: Instant,
    granted: Mutex<u64>,
}

impl Limiter {
    async fn wait(&self, bytes: u64) {
        let at = {
            let Ok(mut g) = self.granted.lock() else {
                return;
            };
            let at = Duration::from_secs_f64(*g as f64 / self.rate as f64);
            *g += bytes;
            at
        };
        tokio::time::sleep_until((self.start + at).into()).await;
    }
}

enum Report {
    Done { chunk: u64, holder: usize },
    Gone { holder: usize, why: String },
}

/// What a fetch did, printed with `--json`.
#[derive(Serialize)]
struct Summary {
    path: String,
    name: String,
    size: u64,
    sha256: String,
    seconds: f64,
    /// Bytes fetched in this run.
    fetched: u64,
    /// Bytes that were already in the partial file.
    resumed: u64,
    mbytes_per_s: f64,
    holders: Vec<HolderSummary>,
}

#[derive(Serialize)]
struct HolderSummary {
    address: String,
    bytes: u64,
    error: Option<String>,
}

/// A file to fetch and who holds it.
struct Target {
    hash: Hash,
    name: String,
    size: u64,
    holders: Vec<Address>,
}

pub async fn run(client: Client, o: Options) -> Result<()> {
    let client = Arc::new(client);
    let t = locate(&client, &o.target).await?;
    let out = match o.out {
        Some(p) => p,
        None => PathBuf::from(safe_name(&t.name, &t.hash)),
    };
    if out.exists() {
        bail!(
            "{} already exists; remove it or choose another --out",
            out.display()
        );
    }
    let part = suffixed(&out, ".part");
    let side = suffixed(&out, ".part.json");
    let n = t.size.div_ceil(CHUNK);
    let mut bits = resume_state(&part, &side, &t.hash, t.size)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&part)
        .with_context(|| format!("cannot create {}", part.display()))?;
    file.set_len(t.size)
        .with_context(|| format!("cannot size {}", part.display()))?;
    let file = Arc::new(file);
    let chunk_len = |c: u64| (t.size - c * CHUNK).min(CHUNK);
    let resumed: u64 = (0..n).filter(|&c| bits[c as usize]).map(chunk_len).sum();
    if resumed > 0 && !o.json {
        println!(
            "resuming {}: {} of {} already in {}",
            t.name,
            crate::human(resumed),
            crate::human(t.size),
            part.display()
        );
    }
    let work = Arc::new(Work {
        queue: Mutex::new((0..n).filter(|&c| !bits[c as usize]).collect()),
        remaining: AtomicU64::new((0..n).filter(|&c| !bits[c as usize]).count() as u64),
    });
    let bar = if std::io::stdout().is_terminal() && !o.json {
        ProgressBar::with_draw_target(Some(t.size), ProgressDrawTarget::stdout())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        // Invariant: the template above is valid.
        .expect("progress template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("{} from {} holder(s)", t.name, t.holders.len()));
    bar.set_position(resumed);
    let limiter = o.limit_rate.map(|rate| {
        Arc::new(Limiter {
            rate,
            start: Instant::now(),
            granted: Mutex::new(0),
        })
    });
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel(256);
    if work.remaining.load(Ordering::Acquire) > 0 {
        for (i, h) in t.holders.iter().enumerate() {
            for _ in 0..STREAMS_PER_HOLDER {
                let w = Worker {
                    client: client.clone(),
                    holder: *h,
                    index: i,
                    hash: t.hash,
                    size: t.size,
                    work: work.clone(),
                    file: file.clone(),
                    tx: tx.clone(),
                    limiter: limiter.clone(),
                };
                tokio::spawn(w.run());
            }
        }
    }
    drop(tx);
    let mut got = vec![0u64; t.holders.len()];
    let mut errors: HashMap<usize, String> = HashMap::new();
    let mut saved = Instant::now();
    let interrupted = loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(Report::Done { chunk, holder }) => {
                    bits[chunk as usize] = true;
                    got[holder] += chunk_len(chunk);
                    bar.inc(chunk_len(chunk));
                    if work.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        break false;
                    }
                    if saved.elapsed() >= SAVE_EVERY {
                        Sidecar::from_bits(&t.hash, t.size, &bits).save(&side)?;
                        saved = Instant::now();
                    }
                }
                Some(Report::Gone { holder, why }) => {
                    errors.entry(holder).or_insert(why);
                }
                None => break false,
            },
            _ = tokio::signal::ctrl_c() => break true,
        }
    };
    let remaining = work.remaining.load(Ordering::Acquire);
    if interrupted || remaining > 0 {
        Sidecar::from_bits(&t.hash, t.size, &bits).save(&side)?;
        bar.abandon();
        let have: u64 = (0..n).filter(|&c| bits[c as usize]).map(chunk_len).sum();
        let why = if interrupted {
            "interrupted".to_owned()
        } else {
            let reasons: Vec<String> = t
                .holders
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let e = errors.get(&i).map_or("gave up", String::as_str);
                    format!("{h}: {e}")
                })
                .collect();
            format!("every holder failed ({})", reasons.join("; "))
        };
        bail!(
            "fetch of {} stopped: {why}. {} of {} are in {}; run the same command again to resume",
            t.name,
            crate::human(have),
            crate::human(t.size),
            part.display()
        );
    }
    bar.finish_and_clear();
    file.sync_all().context("cannot flush the fetched file")?;
    drop(file);
    let actual = crate::share::hash_file(&part).await?;
    if actual != t.hash {
        let _ = std::fs::remove_file(&part);
        let _ = std::fs::remove_file(&side);
        bail!(
            "the fetched file's SHA-256 is {}, not {}: refused and deleted (a holder sent wrong data)",
            hex::encode(actual),
            hex::encode(t.hash)
        );
    }
    std::fs::rename(&part, &out)
        .with_context(|| format!("cannot rename {} to {}", part.display(), out.display()))?;
    let _ = std::fs::remove_file(&side);
    let seconds = started.elapsed().as_secs_f64();
    let fetched = t.size - resumed;
    let summary = Summary {
        path: out.display().to_string(),
        name: t.name.clone(),
        size: t.size,
        sha256: hex::encode(t.hash),
        seconds,
        fetched,
        resumed,
        mbytes_per_s: fetched as f64 / 1e6 / seconds.max(1e-6),
        holders: t
            .holders
            .iter()
            .enumerate()
            .map(|(i, h)| HolderSummary {
                address: h.to_string(),
                bytes: got[i],
                error: errors.get(&i).cloned(),
            })
            .collect(),
    };
    if o.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let used = got.iter().filter(|&&b| b > 0).count();
        println!(
            "fetched {} ({}) in {:.1} s, {:.1} MB/s from {used} of {} holder(s){}; sha256 {} verified -> {}",
            t.name,
            crate::human(t.size),
            seconds,
            summary.mbytes_per_s,
            t.holders.len(),
            if resumed > 0 {
                format!(", {} resumed", crate::human(resumed))
            } else {
                String::new()
            },
            summary.sha256,
            summary.path
        );
    }
    Ok(())
}

/// A share name as a file name in the current folder (never a path elsewhere).
fn safe_name(name: &str, hash: &Hash) -> String {
    match Path::new(name).file_name().and_then(|n| n.to_str()) {
        Some(n) if n == name && !n.starts_with('.') => n.to_owned(),
        _ => format!("{}.bin", &hex::encode(hash)[..16]),
    }
}

/// Finds the file `target` names and its holders.
async fn locate(client: &Client, target: &str) -> Result<Target> {
    let lower = target.to_ascii_lowercase();
    let is_hex = lower.chars().all(|c| c.is_ascii_hexdigit());
    let (hash, listed_name) = if is_hex && lower.len() == 64 {
        (proto::parse_hash(&lower).context("bad hash")?, None)
    } else {
        let files = crate::listing(client).await?;
        let found: Vec<_> = files
            .iter()
            .filter(|(_, f)| {
                f.names.iter().any(|n| n == target)
                    || (is_hex && lower.len() >= 8 && f.sha256.starts_with(&lower))
            })
            .collect();
        match found.as_slice() {
            [] => bail!(
                "nobody in ring {} shares {target:?} (see `fileshare list`)",
                client.ring()
            ),
            [(h, _)] => (**h, Some(target.to_owned())),
            many => bail!(
                "{target:?} matches {} different files: {}; fetch one by its hash",
                many.len(),
                many.iter()
                    .map(|(_, f)| format!("{} ({})", f.sha256, f.names.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let entries = client
        .dht_get(&proto::file_key(&hash))
        .await
        .map_err(|e| anyhow!("cannot read the holders of {}: {e}", hex::encode(hash)))?;
    let mut records: Vec<(Address, Record)> = entries
        .into_iter()
        .filter_map(|e| {
            let (r, h) = Record::decode(&e.value, &e.writer.to_string())?;
            (h == hash).then_some((e.writer, r))
        })
        .collect();
    // Holders should agree on the size of one hash; follow the most common answer.
    let mut sizes: HashMap<u64, usize> = HashMap::new();
    for (_, r) in &records {
        *sizes.entry(r.size).or_default() += 1;
    }
    let Some((&size, _)) = sizes.iter().max_by_key(|(s, c)| (**c, **s)) else {
        bail!("nobody holds {} any more", hex::encode(hash));
    };
    records.retain(|(_, r)| r.size == size);
    records.sort_by_key(|(a, _)| *a);
    records.dedup_by_key(|(a, _)| *a);
    let me = client.address();
    let name = listed_name
        .filter(|n| records.iter().any(|(_, r)| &r.name == n))
        .unwrap_or_else(|| records[0].1.name.clone());
    let holders: Vec<Address> = records
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| *a != me)
        .collect();
    if holders.is_empty() {
        bail!("this node is the only holder of {name}");
    }
    Ok(Target {
        hash,
        name,
        size,
        holders,
    })
}

/// One stream's worth of fetching from one holder.
struct Worker {
    client: Arc<Client>,
    holder: Address,
    index: usize,
    hash: Hash,
    size: u64,
    work: Arc<Work>,
    file: Arc<std::fs::File>,
    tx: mpsc::Sender<Report>,
    limiter: Option<Arc<Limiter>>,
}

enum ChunkError {
    /// The holder answered but refused: asking again will not help.
    Refused(String),
    /// The stream broke or stalled.
    Broken(String),
}

impl Worker {
    async fn run(self) {
        let why = self.fetch_all().await;
        if let Err(why) = why {
            let _ = self
                .tx
                .send(Report::Gone {
                    holder: self.index,
                    why,
                })
                .await;
        }
    }

    async fn fetch_all(&self) -> Result<(), String> {
        let mut stream: Option<RingStream> = None;
        let mut failures = 0;
        let mut buf = Vec::new();
        while let Some(chunk) = self.work.take().await {
            let s = match &mut stream {
                Some(s) => s,
                None => match self
                    .client
                    .connect_stream(&self.holder, proto::SERVICE)
                    .await
                {
                    Ok(s) => stream.insert(s),
                    Err(e) => {
                        self.work.put_back(chunk);
                        return Err(format!("cannot open a stream: {e}"));
                    }
                },
            };
            let len = (self.size - chunk * CHUNK).min(CHUNK);
            if let Some(l) = &self.limiter {
                l.wait(len).await;
            }
            match self.fetch_chunk(s, chunk, len, &mut buf).await {
                Ok(()) => {}
                Err(ChunkError::Refused(why)) => {
                    self.work.put_back(chunk);
                    return Err(format!("refused: {why}"));
                }
                Err(ChunkError::Broken(why)) => {
                    self.work.put_back(chunk);
                    stream = None;
                    failures += 1;
                    if failures >= MAX_FAILURES {
                        return Err(why);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            let file = self.file.clone();
            let data = std::mem::take(&mut buf);
            let wrote = tokio::task::spawn_blocking(move || {
                file.write_all_at(&data, chunk * CHUNK).map(|()| data)
            })
            .await;
            match wrote {
                Ok(Ok(data)) => buf = data,
                Ok(Err(e)) => {
                    self.work.put_back(chunk);
                    return Err(format!("cannot write the partial file: {e}"));
                }
                Err(e) => {
                    self.work.put_back(chunk);
                    return Err(e.to_string());
                }
            }
            let done = Report::Done {
                chunk,
                holder: self.index,
            };
            if self.tx.send(done).await.is_err() {
                return Ok(());
            }
        }
        if let Some(mut s) = stream {
            let _ = s.shutdown().await;
        }
        Ok(())
    }

    async fn fetch_chunk(
        &self,
        s: &mut RingStream,
        chunk: u64,
        len: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), ChunkError> {
        let broken = |e: std::io::Error| ChunkError::Broken(e.to_string());
        let req = Request {
            hash: self.hash,
            offset: chunk * CHUNK,
            // Invariant: a chunk is at most CHUNK (1 MiB) long.
            len: u32::try_from(len).expect("chunk fits u32"),
        };
        s.write_all(&req.emit()).await.map_err(broken)?;
        match tokio::time::timeout(STALL, proto::read_status(s)).await {
            Err(_) => return Err(ChunkError::Broken(format!("no answer in {STALL:?}"))),
            Ok(Err(e)) => return Err(broken(e)),
            Ok(Ok(Err(why))) => return Err(ChunkError::Refused(why)),
            Ok(Ok(Ok(()))) => {}
        }
        buf.resize(len as usize, 0);
        let mut at = 0;
        while at < buf.len() {
            match tokio::time::timeout(STALL, s.read(&mut buf[at..])).await {
                Err(_) => return Err(ChunkError::Broken(format!("stalled for {STALL:?}"))),
                Ok(Err(e)) => return Err(broken(e)),
                Ok(Ok(0)) => {
                    return Err(ChunkError::Broken(
                        "the holder ended the stream mid-chunk".into(),
                    ));
                }
                Ok(Ok(n)) => at += n,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_names_never_leave_the_folder() {
        let h = [0xab; 32];
        assert_eq!(safe_name("film.mkv", &h), "film.mkv");
        assert_eq!(safe_name("../etc/passwd", &h), "abababababababab.bin");
        assert_eq!(safe_name("/abs", &h), "abababababababab.bin");
        assert_eq!(safe_name(".hidden", &h), "abababababababab.bin");
    }
}
