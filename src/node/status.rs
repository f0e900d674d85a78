//! The node's status as `chamber status` shows it (and as `--json` prints it).

use std::collections::BTreeMap;
use std::fmt;

use crate::account::{AccountStatus, LinkState};
use crate::keystore::StoreInfo;
use crate::membership::InviteInfo;
use crate::rendezvous::Friend;
use crate::runtime::RingView;
use crate::trust::KeyWarning;
use crate::trust::limits::LimitsStatus;

/// Everything `chamber status` reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// The daemon's process id.
    pub pid: u32,
    /// When it started (Unix milliseconds).
    pub started_ms: u64,
    /// The node key's fingerprint (hex).
    pub fingerprint: String,
    /// The node's overlay address (hex).
    pub address: String,
    /// Which store holds the secrets.
    pub keystore: StoreInfo,
    /// Each account.
    pub accounts: Vec<AccountStatus>,
    /// Each ring with the friends discovered in it.
    pub rings: Vec<RingStatus>,
    /// The last network check (see `chamber netcheck`), once done.
    pub net: Option<serde_json::Value>,
    /// Invites to rings, waiting for `chamber ring join`.
    #[serde(default)]
    pub invites: Vec<InviteInfo>,
    /// Friends whose node key changed: refused until `chamber trust JID`.
    #[serde(default)]
    pub pinned_key_warnings: Vec<KeyWarning>,
    /// Input dropped or refused early by the abuse limits.
    #[serde(default)]
    pub limits: LimitsStatus,
}

/// One ring.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RingStatus {
    /// Our name for it.
    pub name: String,
    /// Its public id (hex).
    pub id: String,
    /// Friends' nodes up in it.
    pub friends: Vec<FriendStatus>,
    /// The ring itself: neighbours, shortcuts, links.
    #[serde(default)]
    pub overlay: Option<RingView>,
}

/// A friend's node, with when it came up.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FriendStatus {
    /// Who and where.
    #[serde(flatten)]
    pub friend: Friend,
    /// When it was discovered (Unix milliseconds).
    pub since_ms: u64,
}

/// Friends up, keyed by ring then full JID and account, with their discovery time.
pub(crate) type FriendTable = BTreeMap<(String, String, String), FriendStatus>;

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "node {} (pid {})", self.fingerprint, self.pid)?;
        writeln!(f, "  overlay address {}", self.address)?;
        write!(f, "  secrets in the {}", self.keystore.description)?;
        match &self.keystore.fallback_reason {
            Some(r) => writeln!(f, " — fallback, because: {r}")?,
            None => writeln!(f)?,
        }
        writeln!(f, "accounts:")?;
        for a in &self.accounts {
            let state = match a.state {
                LinkState::Connecting => "connecting",
                LinkState::Online => "online",
                LinkState::Suspended => "connection lost, resuming",
                LinkState::Retrying => "login failed, retrying",
                LinkState::Closed => "closed",
            };
            write!(f, "  {} via {} ({:?}): {state}", a.jid, a.server, a.tls)?;
            if let Some(m) = &a.mechanism {
                write!(f, ", SASL {m}")?;
            }
            if a.stream_management {
                write!(f, ", XEP-0198 ({} resumed)", a.resumptions)?;
            }
            if a.reconnects > 0 {
                write!(f, ", {} reconnects", a.reconnects)?;
            }
            if let Some(rtt) = a.ping_rtt_ms {
                write!(f, ", ping {rtt} ms")?;
            }
            writeln!(f)?;
            if let Some(e) = &a.last_error {
                writeln!(f, "    last error: {e}")?;
            }
        }
        if self.rings.is_empty() {
            writeln!(f, "rings: none configured")?;
        }
        for r in &self.rings {
            writeln!(
                f,
                "ring {} ({}…): {} friends' nodes",
                r.name,
                &r.id[..12.min(r.id.len())],
                r.friends
                    .iter()
                    .map(|f| f.friend.address.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            )?;
            // One line per friend's node, however many resources and accounts show it.
            let mut nodes: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
            for fr in &r.friends {
                let e = nodes
                    .entry(fr.friend.address.as_str())
                    .or_insert((fr.friend.fingerprint.as_str(), Vec::new()));
                let bare = fr.friend.jid.split('/').next().unwrap_or_default();
                if !e.1.contains(&bare) {
                    e.1.push(bare);
                }
            }
            for (address, (fp, jids)) in nodes {
                writeln!(
                    f,
                    "  {} (key {}…, address {}…)",
                    jids.join(", "),
                    &fp[..16.min(fp.len())],
                    &address[..16.min(address.len())]
                )?;
            }
            if let Some(o) = &r.overlay {
                write_overlay(f, o)?;
            }
        }
        for i in &self.invites {
            writeln!(
                f,
                "invited to ring {} by {} — run `chamber ring join {}`",
                i.ring,
                i.from,
                crate::membership::shell_word(&i.ring)
            )?;
        }
        for w in &self.pinned_key_warnings {
            write_key_warning(f, w)?;
        }
        let l = &self.limits;
        writeln!(
            f,
            "limits: Jingle initiates {} per JID; dropped: {} initiates over the rate, {} \
             oversized stanzas, {} changed keys refused",
            l.initiate_rate, l.initiates_limited, l.oversized_dropped, l.pinned_key_refusals
        )?;
        match self.net.as_ref().and_then(|n| n.get("class")) {
            Some(class) => writeln!(f, "network: NAT {}", class.as_str().unwrap_or("?"))?,
            None => writeln!(f, "network: not checked yet")?,
        }
        Ok(())
    }
}

fn write_key_warning(f: &mut fmt::Formatter<'_>, w: &KeyWarning) -> fmt::Result {
    let show = |hex: &str| {
        hex.parse::<xmpp_ext::Fingerprint>()
            .map_or_else(|_| hex.to_owned(), |k| k.to_string())
    };
    writeln!(
        f,
        "WARNING: {} changed its node key; refused {} time(s) since it first came in a {}",
        w.jid, w.refused, w.source
    )?;
    for p in &w.pinned {
        writeln!(f, "  pinned key  {}", show(p))?;
    }
    writeln!(f, "  offered key {}", show(&w.offered))?;
    writeln!(
        f,
        "  no link, rendezvous or invite with it until you check the new key with {} and run \
         `chamber trust {}`",
        w.jid, w.jid
    )
}

fn write_overlay(f: &mut fmt::Formatter<'_>, o: &RingView) -> fmt::Result {
    let short = |a: &String| {
        a.trim_start_matches("brunet:node:")
            .chars()
            .take(10)
            .collect::<String>()
    };
    writeln!(
        f,
        "  ring address {}: {}, about {:.0} members",
        o.address,
        if o.connected { "connected" } else { "joining" },
        o.size_estimate
    )?;
    if let Some(w) = &o.owned {
        writeln!(
            f,
            "  owned ring (owner {}…{}), our certificate: {}, expires {}; {} revoked{}; {} links refused",
            &w.owner[..16.min(w.owner.len())],
            if w.we_own { ", this node" } else { "" },
            w.role,
            crate::node::status::ms_date(w.cert_expires_ms),
            w.revoked.len(),
            if w.revoked.is_empty() {
                String::new()
            } else {
                format!(" ({})", w.revoked.join(", "))
            },
            w.refused
        )?;
    }
    if let Some(w) = &o.friends {
        writeln!(
            f,
            "  friends ring: links to roster friends{}; {} vouchers from friends, {} links vouched, {} refused",
            if w.fof {
                " and, on a friend's voucher, their friends"
            } else {
                " only"
            },
            w.vouchers,
            w.vouched,
            w.refused
        )?;
    }
    if let Some(w) = &o.warm {
        writeln!(
            f,
            "  warm restart: {} peers cached, knock port {} ({} knocks taken, {} dropped)",
            w.cached_peers, w.knock_port, w.knocks_received, w.knocks_dropped
        )?;
    }
    let side = |v: &[String]| v.iter().map(short).collect::<Vec<_>>().join(" ");
    writeln!(f, "  left  {}", side(&o.left))?;
    writeln!(f, "  right {}", side(&o.right))?;
    writeln!(
        f,
        "  peers ({}); {} malformed, {} unroutable messages; {} links failed; over the rate: \
         {} connect-to-me, {} DHT writes",
        o.peers.len(),
        o.malformed,
        o.dropped_unroutable,
        o.link_failures,
        o.signals_limited,
        o.dht_writes_limited
    )?;
    for p in &o.peers {
        write!(f, "    {} [{}] ", short(&p.address), p.roles)?;
        match (&p.link, &p.relay_via) {
            (Some(l), _) => {
                write!(f, "{}", l.kind)?;
                if let Some(rtt) = l.rtt_ms {
                    write!(f, " rtt {rtt:.1} ms")?;
                }
                write!(
                    f,
                    ", {} B out, {} B in, via {}",
                    l.tx_bytes, l.rx_bytes, l.signalled
                )?;
            }
            (None, Some(via)) => write!(f, "relay via {}", short(via))?,
            (None, None) => write!(f, "link closing")?,
        }
        writeln!(f)?;
    }
    Ok(())
}

/// A Unix-ms instant as a UTC date (`YYYY-MM-DD`), for certificates' expiry.
pub(crate) fn ms_date(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn dates() {
        assert_eq!(super::ms_date(0), "1970-01-01");
        assert_eq!(super::ms_date(1_795_000_000_000), "2026-11-18");
    }
}
