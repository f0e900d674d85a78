//! Who owns which VPN address: DHT look-ups with a cache, the IPv4 claim, our records, and
//! friends' names.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use brunet_compat::address::Address;
use chamber::api::{ApiError, Client};

use crate::addr::{self, Record, RingPrefix};

/// How long our DHT values live (we put them again well before).
pub const TTL: Duration = Duration::from_secs(300);
/// How long a found owner is trusted before it is looked up again.
const POSITIVE: Duration = Duration::from_secs(60);
/// How long "nobody owns it" is remembered.
const NEGATIVE: Duration = Duration::from_secs(3);
/// How long claimants wait for rival claims to show before reading the claims back.
const SETTLE: Duration = Duration::from_secs(1);

/// Look-ups of who owns a VPN address, cached.
pub struct Directory {
    pub client: Arc<Client>,
    pub prefix: RingPrefix,
    owners: Mutex<HashMap<IpAddr, (Option<Address>, Instant)>>,
    records: Mutex<HashMap<Address, (Record, Instant)>>,
    own_v4: Mutex<Option<Ipv4Addr>>,
}

impl Directory {
    pub fn new(client: Arc<Client>, prefix: RingPrefix) -> Directory {
        Directory {
            client,
            prefix,
            owners: Mutex::default(),
            records: Mutex::default(),
            own_v4: Mutex::default(),
        }
    }

    /// Sets the IPv4 address we hold now.
    pub fn set_own_v4(&self, ip: Option<Ipv4Addr>) {
        if let Ok(mut o) = self.own_v4.lock() {
            *o = ip;
        }
    }

    /// The IPv4 address we hold now.
    pub fn known_own_v4(&self) -> Option<Ipv4Addr> {
        self.own_v4.lock().ok().and_then(|o| *o)
    }

    /// The cached owner of `ip`: `Some(Some(a))` known, `Some(None)` known to be nobody's,
    /// `None` not known (look it up).
    pub fn cached(&self, ip: &IpAddr, now: Instant) -> Option<Option<Address>> {
        let owners = self.owners.lock().ok()?;
        let (owner, at) = owners.get(ip)?;
        let fresh = if owner.is_some() { POSITIVE } else { NEGATIVE };
        (now.duration_since(*at) < fresh).then_some(*owner)
    }

    /// Remembers that `ip` belongs to `a` (checked by the caller).
    pub fn learn(&self, ip: IpAddr, a: Option<Address>) {
        if let Ok(mut o) = self.owners.lock() {
            if o.len() > 65_536 {
                o.clear();
            }
            o.insert(ip, (a, Instant::now()));
        }
    }

    /// Who owns `ip`, asking the DHT (and remembering the answer).
    pub async fn owner_of(&self, ip: IpAddr) -> Result<Option<Address>, ApiError> {
        let owner = match ip {
            IpAddr::V6(v6) => {
                if !self.prefix.contains(&v6) {
                    None
                } else {
                    self.client
                        .dht_get(&addr::v6_key(v6))
                        .await?
                        .into_iter()
                        .map(|e| e.writer)
                        .find(|w| self.prefix.address_of(w) == v6)
                }
            }
            IpAddr::V4(v4) => {
                if !addr::in_v4_net(&v4) {
                    None
                } else {
                    let claims = self.client.dht_get(&addr::claim_key(v4)).await?;
                    addr::claim_winner(&claims).map(|(w, _)| w)
                }
            }
        };
        self.learn(ip, owner);
        Ok(owner)
    }

    /// The record member `a` published (its IPv4 checked against the claims).
    pub async fn record_of(&self, a: &Address) -> Result<Record, ApiError> {
        if let Some((r, at)) = self.records.lock().ok().and_then(|r| r.get(a).cloned())
            && at.elapsed() < POSITIVE
        {
            return Ok(r);
        }
        let mut record = self
            .client
            .dht_get(&addr::node_key(a))
            .await?
            .into_iter()
            .filter(|e| e.writer == *a)
            .find_map(|e| serde_json::from_slice::<Record>(&e.value).ok())
            .unwrap_or_default();
        if let Some(ip4) = record.ip4 {
            let ok = match self.cached(&ip4.into(), Instant::now()) {
                Some(owner) => owner == Some(*a),
                None => self.owner_of(ip4.into()).await? == Some(*a),
            };
            if !ok {
                record.ip4 = None;
            }
        }
        if let Ok(mut r) = self.records.lock() {
            r.insert(*a, (record.clone(), Instant::now()));
        }
        Ok(record)
    }

    /// Claims an IPv4 address for us: `prefer`, else the first of our candidates, that nobody
    /// holds with an earlier claim. Gives the address and the claim value we put.
    pub async fn claim_ipv4(&self, prefer: Option<Ipv4Addr>) -> anyhow::Result<Claim> {
        let me = self.client.address();
        let fresh = (0..64).map(|k| addr::ipv4_candidate(&me, k));
        for ip in prefer.into_iter().chain(fresh) {
            let key = addr::claim_key(ip);
            let claims = retry(|| self.client.dht_get(&key)).await?;
            let mine = claims
                .iter()
                .filter(|e| e.writer == me)
                .find_map(|e| addr::parse_claim(&e.value));
            match addr::claim_winner(&claims) {
                Some((w, _)) if w != me => continue,
                _ => {}
            }
            let since = mine.unwrap_or_else(unix_ms);
            let value = addr::claim_value(since);
            retry(|| self.client.dht_put(&key, &value, TTL)).await?;
            tokio::time::sleep(SETTLE).await;
            let claims = retry(|| self.client.dht_get(&key)).await?;
            match addr::claim_winner(&claims) {
                Some((w, _)) if w == me => {
                    self.learn(ip.into(), Some(me));
                    return Ok(Claim { ip, value });
                }
                other => {
                    tracing::info!(%ip, winner = ?other, "IPv4 claim lost; trying the next");
                    let _ = self.client.dht_remove(&key, &value).await;
                }
            }
        }
        bail!("no free IPv4 address among 64 candidates in 100.64.0.0/10")
    }

    /// Whether we still win our claim (false when an earlier claim showed up, e.g. after two
    /// parts of a ring merged).
    pub async fn still_ours(&self, claim: &Claim) -> Result<bool, ApiError> {
        let claims = self.client.dht_get(&addr::claim_key(claim.ip)).await?;
        Ok(addr::claim_winner(&claims).map(|(w, _)| w) == Some(self.client.address()))
    }

    /// Puts (again) everything the ring needs to reach us.
    pub async fn publish(&self, ip6: Ipv6Addr, record: &Record) -> anyhow::Result<()> {
        let me = self.client.address();
        let rec = serde_json::to_vec(record)?;
        let c = &self.client;
        let (k6, kn) = (addr::v6_key(ip6), addr::node_key(&me));
        retry(|| c.dht_put(&k6, b"v6", TTL)).await?;
        retry(|| c.dht_put(&kn, &rec, TTL)).await?;
        retry(|| c.dht_put(addr::MEMBERS_KEY, &rec, TTL)).await?;
        if let Some(name) = &record.name {
            retry(|| c.publish_name(name, TTL)).await?;
        }
        Ok(())
    }

    /// Takes back what [`Self::publish`] put (when the record changes or we stop).
    pub async fn withdraw(&self, ip6: Ipv6Addr, record: &Record) {
        let me = self.client.address();
        let Ok(rec) = serde_json::to_vec(record) else {
            return;
        };
        let c = &self.client;
        let _ = c.dht_remove(&addr::v6_key(ip6), b"v6").await;
        let _ = c.dht_remove(&addr::node_key(&me), &rec).await;
        let _ = c.dht_remove(addr::MEMBERS_KEY, &rec).await;
    }

    /// Every member's record under the members key, with the writer.
    pub async fn members(&self) -> Result<Vec<(Address, Record)>, ApiError> {
        let mut v: Vec<(Address, Record)> = self
            .client
            .dht_get(addr::MEMBERS_KEY)
            .await?
            .into_iter()
            .filter_map(|e| Some((e.writer, serde_json::from_slice(&e.value).ok()?)))
            .collect();
        v.sort_by_key(|m| m.0);
        v.dedup_by(|a, b| a.0 == b.0);
        Ok(v)
    }
}

/// An IPv4 claim we put.
#[derive(Clone, Debug)]
pub struct Claim {
    pub ip: Ipv4Addr,
    pub value: Vec<u8>,
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a DHT call until it works (the DHT refuses values until the ring has formed), for at
/// most a minute.
pub async fn retry<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut wait = Duration::from_millis(200);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e @ (ApiError::NotRunning { .. } | ApiError::Broken(_))) => {
                return Err(e).context("the chamber daemon");
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("the ring's DHT kept refusing for a minute");
            }
            Err(e) => {
                tracing::debug!(%e, "DHT not ready; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(3));
            }
        }
    }
}

/// Bare JIDs (lower case) that name members: our friends running chamber in the ring, and
/// our own accounts.
#[derive(Clone, Debug, Default)]
pub struct People {
    pub friends: Vec<String>,
    pub own: Vec<String>,
}

impl People {
    /// Every JID whose local part is `local`.
    pub fn with_local(&self, local: &str) -> Vec<&String> {
        self.friends
            .iter()
            .chain(&self.own)
            .filter(|j| j.split('@').next() == Some(local))
            .collect()
    }
}

/// Our friends' and our own bare JIDs in ring `ring`, from the daemon's status.
pub async fn people(control: &std::path::Path, ring: &str) -> anyhow::Result<People> {
    let status = chamber::node::query_status(control)
        .await
        .with_context(|| format!("ask the daemon at {}", control.display()))?;
    let mut friends: Vec<String> = status
        .rings
        .iter()
        .filter(|r| r.name == ring)
        .flat_map(|r| r.friends.iter())
        .map(|f| bare(&f.friend.jid).to_ascii_lowercase())
        .collect();
    friends.sort();
    friends.dedup();
    let own = status
        .accounts
        .iter()
        .map(|a| bare(&a.jid).to_ascii_lowercase())
        .collect();
    Ok(People { friends, own })
}

/// A JID without its resource.
pub fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// The ring's public id (hex), from the daemon's status.
pub async fn ring_id(control: &std::path::Path, ring: &str) -> anyhow::Result<String> {
    let status = chamber::node::query_status(control)
        .await
        .with_context(|| format!("ask the daemon at {}", control.display()))?;
    status
        .rings
        .iter()
        .find(|r| r.name == ring)
        .map(|r| r.id.clone())
        .with_context(|| format!("the daemon does not list ring {ring:?}"))
}
