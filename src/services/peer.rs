//! QUIC connections between members: one per pair, opened on first use and served both ways.
//!
//! ```text
//! datagram   service_len:u8 service payload…          (QUIC DATAGRAM frame, unreliable)
//! bi-stream  kind:u8 service_len:u8 service …
//!   kind 1  request: payload… FIN  →  status:u8 payload… FIN   (0 ok, 1 no service, 2 error)
//!   kind 2  stream:                 →  status:u8 (0 accepted, 1 nobody listens), then bytes
//! ```

use std::sync::Arc;
use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use quinn::{RecvStream, SendStream, VarInt};

use super::signed::{service_prefixed, split_service};
use super::{Counters, RingServices, Services, tls};
use crate::api::frame::{Ev, Frame};

/// QUIC packets stay at the minimum size every path carries: a ring message around one,
/// plus the link's header and a TURN wrapper, still fits a 1500-byte Ethernet frame.
pub const MTU: u16 = 1200;
/// Largest request or reply.
pub const MAX_REQUEST: usize = 256 * 1024;
/// How long a stream opener waits for the far app to accept.
const ACCEPT_WAIT: Duration = Duration::from_secs(30);
/// How long a request waits in an app before it is refused.
const RESPOND_WAIT: Duration = Duration::from_secs(60);

const KIND_REQUEST: u8 = 1;
const KIND_STREAM: u8 = 2;
/// Stream reset codes.
const CODE_APP_GONE: u32 = 1;
const CODE_REFUSED: u32 = 2;

/// An incoming stream waiting for its app to accept it.
pub struct PendingStream {
    pub(super) send: SendStream,
    pub(super) recv: RecvStream,
    pub(super) peer: RingAddress,
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.initial_mtu(MTU)
        .min_mtu(MTU)
        .mtu_discovery_config(None)
        .keep_alive_interval(Some(Duration::from_secs(15)))
        .datagram_receive_buffer_size(Some(1 << 20))
        .max_idle_timeout(Some(
            super::IDLE
                .try_into()
                .unwrap_or(VarInt::from_u32(60_000).into()),
        ));
    Arc::new(t)
}

/// Our client settings on top of the TLS ones.
pub fn tuned_client(mut c: quinn::ClientConfig) -> quinn::ClientConfig {
    c.transport_config(transport());
    c
}

/// Our server settings on top of the TLS ones.
pub fn tuned_server(mut s: quinn::ServerConfig) -> quinn::ServerConfig {
    s.transport_config(transport());
    s
}

/// Takes members' connections until the ring is left.
pub async fn accept_loop(services: Services, ring: Arc<RingServices>) {
    while let Some(incoming) = ring.endpoint.accept().await {
        let services = services.clone();
        let ring = ring.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else {
                return;
            };
            let proved = tls::peer_address(&conn);
            let claimed = ring.map.ring_of(&conn.remote_address());
            match (proved, claimed) {
                (Some(p), Some(c)) if p == c => {
                    if let Ok(mut conns) = ring.conns.lock() {
                        conns.entry(p).or_insert_with(|| conn.clone());
                    }
                    serve(services, ring, conn, p).await;
                }
                _ => {
                    if Counters::bump(&ring.counters.wrong_key) {
                        tracing::warn!(
                            ?proved,
                            ?claimed,
                            "QUIC connection whose key is not its ring address's; closed (further ones counted)"
                        );
                    }
                    conn.close(
                        VarInt::from_u32(CODE_REFUSED),
                        b"key does not match address",
                    );
                }
            }
        });
    }
}

/// Handles what the peer sends on `conn` until it closes.
async fn serve(
    services: Services,
    ring: Arc<RingServices>,
    conn: quinn::Connection,
    peer: RingAddress,
) {
    loop {
        tokio::select! {
            d = conn.read_datagram() => match d {
                Ok(d) => datagram_in(&ring, peer, &d),
                Err(_) => break,
            },
            s = conn.accept_bi() => match s {
                Ok((send, recv)) => {
                    tokio::spawn(bi_in(services.clone(), ring.clone(), peer, send, recv));
                }
                Err(_) => break,
            },
        }
    }
    if let Ok(mut conns) = ring.conns.lock()
        && conns
            .get(&peer)
            .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        conns.remove(&peer);
    }
}

fn datagram_in(ring: &RingServices, peer: RingAddress, d: &[u8]) {
    let Some((service, payload)) = split_service(d) else {
        if Counters::bump(&ring.counters.malformed) {
            tracing::warn!(%peer, "malformed service datagram dropped (further ones counted)");
        }
        return;
    };
    let ev = Ev::Datagram {
        from: peer.to_string(),
        service: service.to_owned(),
        broadcast_hops: None,
    };
    if !ring.to_subscribers(service, &ev, payload) && Counters::bump(&ring.counters.no_service) {
        tracing::info!(%peer, service, "datagram for a service nobody here runs (further ones counted)");
    }
}

async fn read_header(recv: &mut RecvStream) -> Option<(u8, String)> {
    let mut h = [0u8; 2];
    recv.read_exact(&mut h).await.ok()?;
    let mut name = vec![0u8; usize::from(h[1])];
    recv.read_exact(&mut name).await.ok()?;
    Some((h[0], String::from_utf8(name).ok()?))
}

async fn bi_in(
    services: Services,
    ring: Arc<RingServices>,
    peer: RingAddress,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let Some((kind, service)) = read_header(&mut recv).await else {
        Counters::bump(&ring.counters.malformed);
        let _ = send.reset(VarInt::from_u32(CODE_REFUSED));
        return;
    };
    match kind {
        KIND_REQUEST => {
            let Ok(payload) = recv.read_to_end(MAX_REQUEST).await else {
                return;
            };
            if let Some(h) = services.internal(&service) {
                let answer = h(ring.name.clone(), peer, payload).await;
                answer_request(&mut send, answer).await;
                return;
            }
            let Some(app) = ring.subscriber(&service) else {
                Counters::bump(&ring.counters.no_service);
                let _ = send.write_all(&[1]).await;
                let _ = send.finish();
                return;
            };
            let token = services.token();
            if let Ok(mut p) = ring.pending_requests.lock() {
                p.insert(token, send);
            }
            let ev = Ev::Request {
                token,
                from: peer.to_string(),
                service,
            };
            if app.send(Frame::message(&ev, payload)).await.is_err() {
                respond(&ring, token, Err("the service's app went away".into())).await;
                return;
            }
            tokio::time::sleep(RESPOND_WAIT).await;
            respond(
                &ring,
                token,
                Err("the service did not answer in time".into()),
            )
            .await;
        }
        KIND_STREAM => {
            let listener = ring
                .listeners
                .lock()
                .ok()
                .and_then(|l| l.get(&service).filter(|t| !t.is_closed()).cloned());
            let Some(app) = listener else {
                Counters::bump(&ring.counters.no_service);
                let _ = send.write_all(&[1]).await;
                let _ = send.finish();
                return;
            };
            let token = services.token();
            if let Ok(mut p) = ring.pending_streams.lock() {
                p.insert(token, PendingStream { send, recv, peer });
            }
            let ev = Ev::Incoming {
                token,
                from: peer.to_string(),
                service,
            };
            let _ = app.send(Frame::message(&ev, Vec::new())).await;
            tokio::time::sleep(ACCEPT_WAIT).await;
            // Never accepted: refuse it.
            let left = ring
                .pending_streams
                .lock()
                .ok()
                .and_then(|mut p| p.remove(&token));
            if let Some(mut s) = left {
                let _ = s.send.reset(VarInt::from_u32(CODE_REFUSED));
            }
        }
        _ => {
            Counters::bump(&ring.counters.malformed);
            let _ = send.reset(VarInt::from_u32(CODE_REFUSED));
        }
    }
}

/// Answers the request `token` (once; later answers are ignored).
pub async fn respond(ring: &RingServices, token: u64, answer: Result<Vec<u8>, String>) {
    let send = ring
        .pending_requests
        .lock()
        .ok()
        .and_then(|mut p| p.remove(&token));
    let Some(mut send) = send else {
        return;
    };
    answer_request(&mut send, answer).await;
}

/// Writes a request's answer (status 0 and the bytes, or 2 and the reason) and finishes.
async fn answer_request(send: &mut SendStream, answer: Result<Vec<u8>, String>) {
    let out = match answer {
        Ok(b) => [&[0u8][..], &b].concat(),
        Err(e) => [&[2u8][..], e.as_bytes()].concat(),
    };
    let _ = send.write_all(&out).await;
    let _ = send.finish();
}

/// Takes the incoming stream `token`, telling its opener it was accepted.
pub async fn accept_stream(ring: &RingServices, token: u64) -> Result<PendingStream, String> {
    let s = ring
        .pending_streams
        .lock()
        .ok()
        .and_then(|mut p| p.remove(&token));
    let mut s =
        s.ok_or_else(|| "no such incoming stream (it timed out, or was taken)".to_owned())?;
    s.send.write_all(&[0]).await.map_err(|e| e.to_string())?;
    Ok(s)
}

/// The connection to `to`, opened if need be.
pub async fn connection(
    services: &Services,
    ring: &Arc<RingServices>,
    to: RingAddress,
) -> Result<quinn::Connection, String> {
    if to == ring.address {
        return Err("that is this node's own address".into());
    }
    let cached = |ring: &RingServices| {
        ring.conns
            .lock()
            .ok()
            .and_then(|c| c.get(&to).filter(|c| c.close_reason().is_none()).cloned())
    };
    if let Some(c) = cached(ring) {
        return Ok(c);
    }
    let gate = ring
        .dialing
        .lock()
        .map_err(|_| "poisoned".to_owned())?
        .entry(to)
        .or_default()
        .clone();
    let _held = gate.lock().await;
    if let Some(c) = cached(ring) {
        return Ok(c);
    }
    let addr = ring.map.socket_of(&to);
    let connecting = ring
        .endpoint
        .connect_with(services.shared.client.clone(), addr, &tls::server_name(&to))
        .map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(Duration::from_secs(15), connecting)
        .await
        .map_err(|_| format!("{to} did not answer over the ring (is it a member, and up?)"))?
        .map_err(|e| format!("could not reach {to}: {e}"))?;
    if let Ok(mut conns) = ring.conns.lock() {
        conns.insert(to, conn.clone());
    }
    tokio::spawn(serve(services.clone(), ring.clone(), conn.clone(), to));
    Ok(conn)
}

/// Sends a datagram to `to`'s `service`.
pub async fn send_datagram(
    services: &Services,
    ring: &Arc<RingServices>,
    to: RingAddress,
    service: &str,
    payload: &[u8],
) -> Result<(), String> {
    let conn = connection(services, ring, to).await?;
    let d = service_prefixed(service, payload);
    let max = conn.max_datagram_size().unwrap_or(0);
    if d.len() > max {
        return Err(format!(
            "datagram of {} bytes is over the path's {max}; use a stream",
            d.len()
        ));
    }
    conn.send_datagram(d.into()).map_err(|e| e.to_string())
}

async fn open(
    services: &Services,
    ring: &Arc<RingServices>,
    to: RingAddress,
    kind: u8,
    service: &str,
) -> Result<(SendStream, RecvStream), String> {
    let conn = connection(services, ring, to).await?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let mut h = vec![kind];
    h.extend_from_slice(&service_prefixed(service, &[]));
    send.write_all(&h).await.map_err(|e| e.to_string())?;
    Ok((send, recv))
}

/// Asks `to`'s `service` and waits for its answer.
pub async fn request(
    services: &Services,
    ring: &Arc<RingServices>,
    to: RingAddress,
    service: &str,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let ask = async {
        let (mut send, mut recv) = open(services, ring, to, KIND_REQUEST, service).await?;
        if payload.len() > MAX_REQUEST {
            return Err(format!(
                "request of {} bytes is over {MAX_REQUEST}",
                payload.len()
            ));
        }
        send.write_all(payload).await.map_err(|e| e.to_string())?;
        let _ = send.finish();
        let answer = recv
            .read_to_end(MAX_REQUEST + 1)
            .await
            .map_err(|e| format!("the answer failed: {e}"))?;
        match answer.split_first() {
            Some((0, rest)) => Ok(rest.to_vec()),
            Some((1, _)) => Err(format!("{to} runs no service {service:?}")),
            Some((_, rest)) => Err(format!("{to} refused: {}", String::from_utf8_lossy(rest))),
            None => Err("an empty answer".into()),
        }
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("no answer from {to} within {timeout:?}"))?
}

/// Opens a stream to `to`'s `service`, once its app accepted it.
pub async fn open_stream(
    services: &Services,
    ring: &Arc<RingServices>,
    to: RingAddress,
    service: &str,
) -> Result<(SendStream, RecvStream), String> {
    let (send, mut recv) = open(services, ring, to, KIND_STREAM, service).await?;
    let mut status = [0u8; 1];
    tokio::time::timeout(
        ACCEPT_WAIT + Duration::from_secs(5),
        recv.read_exact(&mut status),
    )
    .await
    .map_err(|_| format!("{to} did not accept the stream in time"))?
    .map_err(|e| format!("{to} refused the stream: {e}"))?;
    match status[0] {
        0 => Ok((send, recv)),
        _ => Err(format!("nobody listens for {service:?} streams at {to}")),
    }
}

/// Carries a stream between an app connection and QUIC until both directions end. A QUIC
/// reset or a lost connection reaches the app as a reset frame, never as a clean end; an app
/// that goes away without finishing resets the QUIC stream.
pub async fn bridge(
    mut app_rx: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    app_tx: super::AppTx,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    use crate::api::frame::read_frame;
    let up = tokio::spawn(async move {
        loop {
            match read_frame(&mut app_rx).await {
                Ok(Some(Frame::Data(d))) => {
                    if send.write_all(&d).await.is_err() {
                        return;
                    }
                }
                Ok(Some(Frame::Fin)) => {
                    let _ = send.finish();
                    return;
                }
                Ok(Some(Frame::Reset(_)) | None) | Err(_) => {
                    let _ = send.reset(VarInt::from_u32(CODE_APP_GONE));
                    return;
                }
                Ok(Some(Frame::Message { .. })) => {
                    let _ = send.reset(VarInt::from_u32(CODE_APP_GONE));
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                if app_tx.send(Frame::Data(buf[..n].to_vec())).await.is_err() {
                    let _ = recv.stop(VarInt::from_u32(CODE_APP_GONE));
                    break;
                }
            }
            Ok(None) => {
                let _ = app_tx.send(Frame::Fin).await;
                break;
            }
            Err(e) => {
                let reason = match e {
                    quinn::ReadError::Reset(code) if code == VarInt::from_u32(CODE_APP_GONE) => {
                        "the far app closed the stream without finishing it".to_owned()
                    }
                    e => format!("the stream failed: {e}"),
                };
                let _ = app_tx.send(Frame::Reset(reason)).await;
                break;
            }
        }
    }
    let _ = up.await;
}
