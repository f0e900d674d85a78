//! quic_baseline: a plain QUIC bulk transfer (quinn over UDP, default transport settings), the
//! baseline the file share benchmark compares ring streams with on the same path
//! (`integration/tests/fileshare_bench.rs`). Not an app: a measuring tool.
//!
//! ```text
//! quic_baseline server --listen ADDR --cert-out FILE [--via RELAY]
//! quic_baseline client --connect ADDR --cert FILE --bytes N
//! quic_baseline relay  --listen ADDR
//! ```
//!
//! The server takes one connection, reads one stream to its end and answers with the byte
//! count (u64 BE); the client sends N bytes and prints `{"bytes","seconds","mbytes_per_s"}`
//! once the server has confirmed them all. TLS is verified: the client trusts only the
//! certificate the server wrote to `--cert-out`.
//!
//! `relay` is a TURN-like UDP forwarder for a path through a middle box: the first address
//! that sends it `REGISTER` is the server; every datagram from anyone else goes to the server,
//! and the server's datagrams go to the last such sender. A server started with `--via RELAY`
//! registers from its own socket (every 200 ms, which also keeps its NAT mapping open), so a
//! client can reach a server behind a NAT that admits nothing unsolicited.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

const REGISTER: &[u8] = b"REGISTER";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive one transfer.
    Server {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        cert_out: PathBuf,
        /// Register with this relay and serve through it.
        #[arg(long)]
        via: Option<SocketAddr>,
    },
    /// Send one transfer.
    Client {
        #[arg(long)]
        connect: SocketAddr,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        bytes: u64,
    },
    /// Forward datagrams between a registered server and its client.
    Relay {
        #[arg(long)]
        listen: SocketAddr,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Server {
            listen,
            cert_out,
            via,
        } => rt.block_on(server(listen, cert_out, via)),
        Command::Client {
            connect,
            cert,
            bytes,
        } => rt.block_on(client(connect, cert, bytes)),
        Command::Relay { listen } => relay(listen),
    }
}

async fn server(listen: SocketAddr, cert_out: PathBuf, via: Option<SocketAddr>) -> Result<()> {
    let key = rcgen::generate_simple_self_signed(vec!["baseline".into()])?;
    let cert_der = key.cert.der().to_vec();
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let cfg = quinn::ServerConfig::with_single_cert(vec![cert_der.clone().into()], key_der)?;
    let socket = UdpSocket::bind(listen).with_context(|| format!("bind {listen}"))?;
    if let Some(relay) = via {
        let s = socket.try_clone()?;
        std::thread::spawn(move || {
            loop {
                let _ = s.send_to(REGISTER, relay);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(cfg),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    std::fs::write(&cert_out, &cert_der)?;
    println!("listening on {}", endpoint.local_addr()?);
    let conn = endpoint.accept().await.context("endpoint closed")?.await?;
    let (mut send, mut recv) = conn.accept_bi().await?;
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(n) = recv.read(&mut buf).await? {
        total += n as u64;
    }
    send.write_all(&total.to_be_bytes()).await?;
    send.finish()?;
    // Let the answer reach the client before closing.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    println!("received {total} bytes");
    Ok(())
}

async fn client(connect: SocketAddr, cert: PathBuf, bytes: u64) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(std::fs::read(&cert)?.into())?;
    let cfg = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    let bind: SocketAddr = if connect.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(bind)?;
    endpoint.set_default_client_config(cfg);
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        endpoint.connect(connect, "baseline")?,
    )
    .await
    .context("no QUIC handshake in 10 s")??;
    let start = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    let block = vec![0x5au8; 256 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        send.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    send.finish()?;
    let mut ack = [0u8; 8];
    recv.read_exact(&mut ack).await?;
    let seconds = start.elapsed().as_secs_f64();
    if u64::from_be_bytes(ack) != bytes {
        bail!(
            "the server got {} of {bytes} bytes",
            u64::from_be_bytes(ack)
        );
    }
    conn.close(0u32.into(), b"done");
    println!(
        "{}",
        serde_json::json!({
            "bytes": bytes,
            "seconds": seconds,
            "mbytes_per_s": bytes as f64 / 1e6 / seconds,
        })
    );
    endpoint.wait_idle().await;
    Ok(())
}

fn relay(listen: SocketAddr) -> Result<()> {
    let s = UdpSocket::bind(listen).with_context(|| format!("bind {listen}"))?;
    println!("relaying on {}", s.local_addr()?);
    let mut server: Option<SocketAddr> = None;
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = s.recv_from(&mut buf)?;
        if &buf[..n] == REGISTER {
            server = Some(from);
            continue;
        }
        let to = if Some(from) == server {
            client
        } else {
            client = Some(from);
            server
        };
        if let Some(to) = to {
            let _ = s.send_to(&buf[..n], to);
        }
    }
}
