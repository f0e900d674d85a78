//! The daemon's side of the app socket (`services.sock`, 0600, beside the control socket):
//! each connection says which ring it works in, then sends [`Op`]s and receives [`Ev`]s, or
//! turns into one stream ([`Op::Connect`], [`Op::Accept`]). Framing in [`crate::api::frame`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use brunet_compat::address::Address as RingAddress;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::{RingServices, Services, peer, signed};
use crate::api::frame::{Ev, Frame, Op, read_frame, write_frame};
use crate::runtime::app::{DhtOp, SignedValues};

/// How long a DHT operation may take.
const DHT_WAIT: Duration = Duration::from_secs(30);
/// Longest DHT lifetime an app may ask for (a day).
const MAX_TTL: u32 = 86_400;

/// The app socket's path for a daemon whose control socket is `control`.
pub fn socket_path(control: &Path) -> std::path::PathBuf {
    control.with_file_name("services.sock")
}

/// Binds the app socket (replacing a stale one; the control socket already proved we are the
/// only daemon).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serves apps until the daemon stops.
pub async fn serve(listener: UnixListener, services: Services) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                tokio::spawn(client(s, services.clone()));
            }
            Err(e) => tracing::warn!(%e, "app socket accept"),
        }
    }
}

fn parse_addr(s: &str) -> Result<RingAddress, String> {
    s.parse::<RingAddress>()
        .map_err(|_| format!("{s:?} is not a ring address (brunet:node:…)"))
}

async fn client(stream: UnixStream, services: Services) {
    let (mut rx, mut wx) = stream.into_split();
    let (tx, mut out) = mpsc::channel::<Frame>(1024);
    let writer = tokio::spawn(async move {
        while let Some(f) = out.recv().await {
            if write_frame(&mut wx, &f).await.is_err() {
                break;
            }
        }
    });
    let err = |m: String| Frame::message(&Ev::Error { message: m }, Vec::new());
    let ring = match read_frame(&mut rx).await {
        Ok(Some(f)) => match f.header::<Op>() {
            Ok(Op::Hello { ring }) => services.ring(ring.as_deref()),
            Ok(_) => Err("the first message must be hello".into()),
            Err(e) => Err(e.to_string()),
        },
        _ => Err("no hello".into()),
    };
    let ring = match ring {
        Ok(r) => r,
        Err(m) => {
            let _ = tx.send(err(m)).await;
            drop(tx);
            let _ = writer.await;
            return;
        }
    };
    let welcome = Ev::Welcome {
        ring: ring.name.clone(),
        address: ring.address.to_string(),
    };
    let _ = tx.send(Frame::message(&welcome, Vec::new())).await;
    loop {
        let frame = match read_frame(&mut rx).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(err(e.to_string())).await;
                break;
            }
        };
        let (op, payload) = match (&frame.header::<Op>(), frame) {
            (Ok(op), Frame::Message { payload, .. }) => (op.clone(), payload),
            (Err(e), _) => {
                let _ = tx.send(err(e.to_string())).await;
                continue;
            }
            _ => continue,
        };
        match op {
            Op::Connect { to, service } => {
                let opened = match parse_addr(&to) {
                    Ok(to) => peer::open_stream(&services, &ring, to, &service).await,
                    Err(e) => Err(e),
                };
                match opened {
                    Ok((send, recv)) => {
                        let _ = tx
                            .send(Frame::message(&Ev::Connected { peer: to }, Vec::new()))
                            .await;
                        peer::bridge(rx, tx, send, recv).await;
                    }
                    Err(e) => {
                        let _ = tx.send(err(e)).await;
                        drop(tx);
                    }
                }
                let _ = writer.await;
                return;
            }
            Op::Accept { token } => {
                match peer::accept_stream(&ring, token).await {
                    Ok(s) => {
                        let ev = Ev::Connected {
                            peer: s.peer.to_string(),
                        };
                        let _ = tx.send(Frame::message(&ev, Vec::new())).await;
                        peer::bridge(rx, tx, s.send, s.recv).await;
                    }
                    Err(e) => {
                        let _ = tx.send(err(e)).await;
                        drop(tx);
                    }
                }
                let _ = writer.await;
                return;
            }
            op => {
                // Anything that waits on the ring runs on its own, so one slow request does not
                // hold up the app's other traffic.
                let (services, ring, tx) = (services.clone(), ring.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(f) = handle(&services, &ring, &tx, op, payload).await {
                        let _ = tx.send(f).await;
                    }
                });
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn done(id: u64, r: Result<(), String>) -> Option<Frame> {
    (id != 0).then(|| Frame::message(&Ev::Done { id, error: r.err() }, Vec::new()))
}

async fn handle(
    services: &Services,
    ring: &Arc<RingServices>,
    tx: &super::AppTx,
    op: Op,
    payload: Vec<u8>,
) -> Option<Frame> {
    match op {
        Op::Subscribe { service, id } => {
            ring.subscribe(&service, tx.clone());
            done(id, Ok(()))
        }
        Op::Listen { service, id } => match ring.listen(&service, tx.clone()) {
            Ok(()) => done(id, Ok(())),
            Err(m) if id != 0 => done(id, Err(m)),
            Err(m) => Some(Frame::message(&Ev::Error { message: m }, Vec::new())),
        },
        Op::Send { id, to, service } => {
            let r = match parse_addr(&to) {
                Ok(to) => peer::send_datagram(services, ring, to, &service, &payload).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &r
                && id == 0
            {
                tracing::debug!(%e, "app datagram not sent");
            }
            done(id, r)
        }
        Op::Request {
            id,
            to,
            service,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms.clamp(1, 600_000));
            let r = match parse_addr(&to) {
                Ok(to) => peer::request(services, ring, to, &service, &payload, timeout).await,
                Err(e) => Err(e),
            };
            Some(match r {
                Ok(answer) => Frame::message(&Ev::Reply { id, error: None }, answer),
                Err(e) => Frame::message(&Ev::Reply { id, error: Some(e) }, Vec::new()),
            })
        }
        Op::Respond { token, error } => {
            let answer = match error {
                Some(e) => Err(e),
                None => Ok(payload),
            };
            peer::respond(ring, token, answer).await;
            None
        }
        Op::Broadcast { id, service, end } => {
            let end = match end.as_deref().map(parse_addr).transpose() {
                Ok(e) => e,
                Err(e) => return done(id, Err(e)),
            };
            let data = signed::seal_broadcast(services.secret(), &service, &payload);
            services.runtime().broadcast(ring.index, end, data).await;
            done(id, Ok(()))
        }
        Op::DhtPut { id, key, ttl_s } => {
            done(id, dht_put(services, ring, &key, payload, ttl_s).await)
        }
        Op::DhtGet { id, key } => Some(match dht_get(services, ring, &key).await {
            Ok(values) => Frame::message(
                &Ev::Values {
                    id,
                    values: values
                        .into_iter()
                        .map(|(w, v)| (w.to_string(), hex::encode(v)))
                        .collect(),
                },
                Vec::new(),
            ),
            Err(e) => Frame::message(&Ev::Done { id, error: Some(e) }, Vec::new()),
        }),
        Op::DhtRemove { id, key } => {
            let k = signed::dht_key(&key);
            let (reply, rx) = oneshot::channel();
            let op = DhtOp::Remove {
                value: payload,
                reply,
            };
            services.runtime().dht(ring.index, k, op).await;
            let r = match tokio::time::timeout(DHT_WAIT, rx).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err("no such value under that key".into()),
                _ => Err("the DHT did not answer in time".into()),
            };
            done(id, r)
        }
        Op::PublishName { id, name, ttl_s } => {
            let key = name_key(&name);
            done(
                id,
                dht_put(services, ring, &key, name.into_bytes(), ttl_s).await,
            )
        }
        Op::Resolve { id, name } => Some(match resolve(services, ring, &name).await {
            Ok(a) => Frame::message(
                &Ev::Resolved {
                    id,
                    address: a.to_string(),
                },
                Vec::new(),
            ),
            Err(e) => Frame::message(&Ev::Done { id, error: Some(e) }, Vec::new()),
        }),
        Op::Hello { .. } | Op::Connect { .. } | Op::Accept { .. } => Some(Frame::message(
            &Ev::Error {
                message: "hello, connect and accept only open a connection".into(),
            },
            Vec::new(),
        )),
    }
}

fn name_key(name: &str) -> String {
    format!("chamber/name/{}", name.to_lowercase())
}

async fn dht_put(
    services: &Services,
    ring: &RingServices,
    key: &str,
    value: Vec<u8>,
    ttl_s: u32,
) -> Result<(), String> {
    if !(1..=MAX_TTL).contains(&ttl_s) {
        return Err(format!("a DHT lifetime must be 1 to {MAX_TTL} seconds"));
    }
    let k = signed::dht_key(key);
    let sig = signed::sign_dht(services.secret(), &k, &value);
    let (reply, rx) = oneshot::channel();
    let op = DhtOp::Put {
        value,
        sig,
        ttl_s,
        reply,
    };
    services.runtime().dht(ring.index, k, op).await;
    match tokio::time::timeout(DHT_WAIT, rx).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => {
            Err("the DHT refused the value (too large, or the ring is not formed yet)".into())
        }
        _ => Err("the DHT did not answer in time".into()),
    }
}

/// The values under `key` whose signatures check, each with its writer.
async fn dht_get(
    services: &Services,
    ring: &RingServices,
    key: &str,
) -> Result<Vec<(RingAddress, Vec<u8>)>, String> {
    let k = signed::dht_key(key);
    let (reply, rx) = oneshot::channel();
    services
        .runtime()
        .dht(ring.index, k, DhtOp::Get { reply })
        .await;
    let values = match tokio::time::timeout(DHT_WAIT, rx).await {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return Err("no DHT node answered".into()),
        _ => return Err("the DHT did not answer in time".into()),
    };
    Ok(values
        .into_iter()
        .filter_map(|v| SignedValues::writer(&k, &v.value, &v.sig).map(|w| (w, v.value)))
        .collect())
}

/// An address, a friend's bare JID (from rendezvous) or a name published in the DHT.
async fn resolve(
    services: &Services,
    ring: &RingServices,
    name: &str,
) -> Result<RingAddress, String> {
    if let Ok(a) = name.parse::<RingAddress>() {
        return Ok(a);
    }
    if name.contains('@') {
        let bare = name.split('/').next().unwrap_or(name);
        return services
            .runtime()
            .friends(ring.index)
            .await
            .into_iter()
            .find(|(jid, _)| jid.eq_ignore_ascii_case(bare))
            .map(|(_, a)| a)
            .ok_or_else(|| {
                format!(
                    "{bare} is not a friend running chamber in ring {}",
                    ring.name
                )
            });
    }
    let mut writers: Vec<RingAddress> = dht_get(services, ring, &name_key(name))
        .await?
        .into_iter()
        .filter(|(_, v)| v.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(w, _)| w)
        .collect();
    writers.sort();
    writers.dedup();
    match writers.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "nobody in ring {} published the name {name:?}",
            ring.name
        )),
        many => Err(format!(
            "{} nodes claim the name {name:?}; use an address",
            many.len()
        )),
    }
}
