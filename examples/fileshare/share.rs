//! `fileshare share`: hash the files, publish them, serve ranges until stopped.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use chamber::api::{Client, RingStream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::proto::{self, Hash, REQUEST_LEN, Record, Request};

/// Most streams served at once (each holds one piece buffer).
const MAX_STREAMS: usize = 64;
/// Bytes read from disk and written to the stream at a time.
const PIECE: usize = 256 * 1024;
/// A fetcher that sends no request for this long loses its stream.
const IDLE: Duration = Duration::from_secs(120);

/// A file being served: where it is and what it was when hashed.
struct Shared {
    path: PathBuf,
    name: String,
    size: u64,
    modified: Option<SystemTime>,
}

/// SHA-256 of a file, on a blocking thread.
pub async fn hash_file(path: &Path) -> Result<Hash> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<Hash> {
        let mut f = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().into())
    })
    .await?
}

pub async fn run(client: Client, files: Vec<PathBuf>, name: Option<String>) -> Result<()> {
    let me = client.address().to_string();
    let mut table: HashMap<Hash, Shared> = HashMap::new();
    let mut records = Vec::new();
    for path in &files {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot share {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        let name = match &name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("{} has no file name", path.display()))?,
        };
        if name.is_empty() || name.len() > proto::MAX_NAME {
            bail!("a share name must be 1 to {} bytes", proto::MAX_NAME);
        }
        let hash = hash_file(path).await?;
        let record = Record {
            name: name.clone(),
            size: meta.len(),
            sha256: hex::encode(hash),
            holder: me.clone(),
        };
        println!(
            "sharing {name} ({}, sha256 {})",
            crate::human(meta.len()),
            record.sha256
        );
        records.push((hash, record));
        table.insert(
            hash,
            Shared {
                path: path.canonicalize().unwrap_or_else(|_| path.clone()),
                name,
                size: meta.len(),
                modified: meta.modified().ok(),
            },
        );
    }
    let client = Arc::new(client);
    let table = Arc::new(table);
    let listener = client
        .listen(proto::SERVICE)
        .await
        .context("cannot listen for fetches")?;
    publish(&client, &records).await?;
    println!(
        "serving {} file(s) as {me} in ring {}; Ctrl-C stops",
        records.len(),
        client.ring()
    );
    // Streams are taken on their own task, so nothing else cancels an accept half-way.
    let mut serving = tokio::spawn(accept_loop(listener, table));
    let mut republish = tokio::time::interval(crate::REPUBLISH);
    republish.tick().await;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = loop {
        tokio::select! {
            ended = &mut serving => {
                break Err(match ended {
                    Ok(e) => e,
                    Err(e) => anyhow::anyhow!("the server task failed: {e}"),
                });
            }
            _ = republish.tick() => {
                if let Err(e) = publish(&client, &records).await {
                    eprintln!("fileshare: could not refresh the DHT records (will retry): {e:#}");
                }
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = term.recv() => break Ok(()),
        }
    };
    serving.abort();
    for (hash, r) in &records {
        let v = r.encode();
        let _ = client.dht_remove(&proto::file_key(hash), &v).await;
        let _ = client.dht_remove(&proto::list_key(hash), &v).await;
    }
    println!("stopped sharing");
    outcome
}

/// Takes fetchers' streams and serves each on its own task; returns why it stopped.
async fn accept_loop(
    mut listener: chamber::api::Listener,
    table: Arc<HashMap<Hash, Shared>>,
) -> anyhow::Error {
    let slots = Arc::new(Semaphore::new(MAX_STREAMS));
    loop {
        let (mut stream, from) = match listener.accept().await {
            Ok(s) => s,
            // The daemon refused to hand over one stream (it timed out): keep taking others.
            Err(chamber::api::ApiError::Refused(e)) => {
                tracing::info!("a stream could not be taken: {e}");
                continue;
            }
            Err(e) => return anyhow::anyhow!("the daemon stopped handing over streams: {e}"),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%from, "too many fetches at once; stream refused");
            let _ = proto::refuse(&mut stream, "busy: too many fetches at once").await;
            let _ = stream.shutdown().await;
            continue;
        };
        let table = table.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &table).await {
                tracing::info!(%from, "stream ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Writes every record under its two keys.
async fn publish(client: &Client, records: &[(Hash, Record)]) -> Result<()> {
    for (hash, r) in records {
        let v = r.encode();
        for key in [proto::file_key(hash), proto::list_key(hash)] {
            client
                .dht_put(&key, &v, crate::TTL)
                .await
                .with_context(|| format!("cannot publish {} under {key}", r.name))?;
        }
    }
    Ok(())
}

/// Answers one fetcher's requests until it finishes its side.
async fn serve(mut stream: RingStream, table: &HashMap<Hash, Shared>) -> Result<()> {
    let mut buf = vec![0u8; PIECE];
    loop {
        let mut req = [0u8; REQUEST_LEN];
        // A clean end before a request is the fetcher saying it is done.
        match tokio::time::timeout(IDLE, stream.read(&mut req[..1])).await {
            Err(_) => bail!("idle for {IDLE:?}"),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
        tokio::time::timeout(IDLE, stream.read_exact(&mut req[1..]))
            .await
            .context("request cut short")??;
        if req[..4] != proto::MAGIC {
            // Not our protocol: nothing more on this stream can be trusted to be framed.
            proto::refuse(&mut stream, "not a fileshare request (bad magic)").await?;
            let _ = stream.shutdown().await;
            bail!("malformed request (bad magic); stream closed");
        }
        let req = match Request::parse(&req) {
            Ok(r) => r,
            Err(why) => {
                proto::refuse(&mut stream, &why).await?;
                continue;
            }
        };
        let Some(file) = table.get(&req.hash) else {
            proto::refuse(&mut stream, "no such file shared here").await?;
            continue;
        };
        let end = req.offset.checked_add(u64::from(req.len));
        if end.is_none_or(|e| e > file.size) {
            let why = format!(
                "range {}+{} is outside {} ({} bytes)",
                req.offset, req.len, file.name, file.size
            );
            proto::refuse(&mut stream, &why).await?;
            continue;
        }
        let fd = match open_unchanged(file) {
            Ok(f) => f,
            Err(why) => {
                proto::refuse(&mut stream, &why).await?;
                continue;
            }
        };
        stream.write_all(&[proto::STATUS_OK]).await?;
        let (mut at, mut left) = (req.offset, req.len as usize);
        while left > 0 {
            let n = left.min(PIECE);
            let piece = &mut buf[..n];
            fd.read_exact_at(piece, at)
                .with_context(|| format!("{} became unreadable", file.path.display()))?;
            stream.write_all(piece).await?;
            at += n as u64;
            left -= n;
        }
    }
}

/// Opens a shared file, refusing if it changed since it was hashed.
fn open_unchanged(file: &Shared) -> Result<std::fs::File, String> {
    let f = std::fs::File::open(&file.path)
        .map_err(|e| format!("{} cannot be opened here: {e}", file.name))?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if meta.len() != file.size || meta.modified().ok() != file.modified {
        return Err(format!(
            "{} changed since it was shared; its holder must share it again",
            file.name
        ));
    }
    Ok(f)
}
