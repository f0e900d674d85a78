//! A minimal DNS responder on our VPN addresses (UDP port 53) for names under `.chamber`:
//!
//! - `LOCAL.chamber`: the friend whose JID's local part is `LOCAL` (when only one is);
//! - `LOCAL.DOMAIN.chamber`: the friend `LOCAL@DOMAIN`;
//! - `NAME.chamber`: otherwise, the member that published `NAME` in the DHT.
//!
//! AAAA answers the member's VPN IPv6 (derived from its address), A its claimed IPv4.
//! Anything outside `.chamber` is refused: this is not a recursive resolver.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brunet_compat::address::Address;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;

use crate::directory::{self, Directory, People};

/// The top-level domain the VPN answers for.
pub const TLD: &str = "chamber";
const ANSWER_TTL: u32 = 60;

/// What the responder needs to turn names into addresses.
pub struct Names {
    pub dir: Arc<Directory>,
    pub control: PathBuf,
    people: Mutex<(People, Option<Instant>)>,
}

impl Names {
    pub fn new(dir: Arc<Directory>, control: PathBuf) -> Names {
        Names {
            dir,
            control,
            people: Mutex::new((People::default(), None)),
        }
    }

    /// Our friends' and our own JIDs (asked of the daemon at most every 10 s).
    pub async fn people(&self) -> People {
        let mut p = self.people.lock().await;
        if p.1.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            match directory::people(&self.control, self.dir.client.ring()).await {
                Ok(v) => *p = (v, Some(Instant::now())),
                Err(e) => tracing::debug!(%e, "friends not listed"),
            }
        }
        p.0.clone()
    }

    /// The member a name under `.chamber` (without the TLD) means.
    pub async fn lookup(&self, name: &str) -> Option<Address> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let people = self.people().await;
        let jid = match name.split_once('.') {
            Some((local, domain)) => Some(format!("{local}@{domain}")),
            None => match people.with_local(&name).as_slice() {
                [one] => Some((*one).clone()),
                _ => None,
            },
        };
        if let Some(jid) = jid {
            if people.own.contains(&jid) {
                return Some(self.dir.client.address());
            }
            if people.friends.contains(&jid)
                && let Ok(a) = self.dir.client.resolve(&jid).await
            {
                return Some(a);
            }
        }
        if name.contains('.') {
            return None;
        }
        self.dir.client.resolve(&name).await.ok()
    }

    /// The addresses of member `a` of type `t` (AAAA or A).
    pub async fn addresses(&self, a: &Address, t: RecordType) -> Vec<IpAddr> {
        match t {
            RecordType::AAAA => vec![self.dir.prefix.address_of(a).into()],
            RecordType::A => {
                if *a == self.dir.client.address() {
                    return self
                        .dir
                        .known_own_v4()
                        .into_iter()
                        .map(Into::into)
                        .collect();
                }
                match self.dir.record_of(a).await {
                    Ok(r) => r.ip4.into_iter().map(Into::into).collect(),
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// The answer to one query message.
    pub async fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = Message::from_vec(query).ok()?;
        if q.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut r = Message::response(q.metadata.id, q.metadata.op_code);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.metadata.authoritative = true;
        let Some(question) = q.queries.first().cloned() else {
            r.metadata.response_code = ResponseCode::FormErr;
            return r.to_vec().ok();
        };
        r.add_query(question.clone());
        if q.metadata.op_code != OpCode::Query {
            r.metadata.response_code = ResponseCode::NotImp;
            return r.to_vec().ok();
        }
        let full = question.name().to_ascii().to_ascii_lowercase();
        let full = full.trim_end_matches('.');
        let Some(name) = full.strip_suffix(&format!(".{TLD}")) else {
            r.metadata.response_code = ResponseCode::Refused;
            return r.to_vec().ok();
        };
        match self.lookup(name).await {
            None => r.metadata.response_code = ResponseCode::NXDomain,
            Some(a) => {
                for ip in self.addresses(&a, question.query_type()).await {
                    let rdata = match ip {
                        IpAddr::V4(v4) => RData::A(A(v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                    };
                    r.add_answer(Record::from_rdata(
                        question.name().clone(),
                        ANSWER_TTL,
                        rdata,
                    ));
                }
            }
        }
        r.to_vec().ok()
    }
}

/// Answers queries on `bind` until the socket fails.
pub async fn serve(names: Arc<Names>, bind: SocketAddr) -> anyhow::Result<()> {
    let sock = Arc::new(bind_retrying(bind).await?);
    tracing::info!(%bind, "DNS for .{TLD} names");
    let mut buf = vec![0u8; 1500];
    loop {
        let (n, peer) = sock.recv_from(&mut buf).await?;
        let query = buf[..n].to_vec();
        let (names, sock) = (names.clone(), sock.clone());
        tokio::spawn(async move {
            if let Some(a) = names.answer(&query).await {
                let _ = sock.send_to(&a, peer).await;
            }
        });
    }
}

async fn bind_retrying(bind: SocketAddr) -> anyhow::Result<UdpSocket> {
    // A fresh address can take a moment to become usable (duplicate address detection).
    let mut last = None;
    for _ in 0..50 {
        match UdpSocket::bind(bind).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!(
        "cannot bind the DNS responder to {bind}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}
