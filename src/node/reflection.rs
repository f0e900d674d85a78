//! The daemon's network check: XEP-0215 from every online account, then STUN (DESIGN.md §1).
//! It runs once the first account is online, in its own task, and reports a JSON net report.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use xmpp_ext::extdisco::ExternalService;

use crate::account::{AccountHandle, LinkState};
use crate::reflect::{ProbeConfig, StunServer, probe, stun_servers};

/// How long accounts get to come online before the check goes ahead without the rest.
const WAIT_FOR_ACCOUNTS: Duration = Duration::from_secs(5);

pub(super) fn spawn(
    handles: Vec<AccountHandle>,
    fallback: Vec<String>,
    out: mpsc::Sender<serde_json::Value>,
) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < WAIT_FOR_ACCOUNTS
            && handles
                .iter()
                .any(|h| h.status().state != LinkState::Online)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut offers: Vec<(String, Vec<ExternalService>)> = Vec::new();
        for h in handles
            .iter()
            .filter(|h| h.status().state == LinkState::Online)
        {
            let domain = h.jid().domain().to_string();
            if offers.iter().any(|(d, _)| *d == domain) {
                continue;
            }
            match h.external_services(Duration::from_secs(10)).await {
                Ok(list) => offers.push((domain, list)),
                Err(e) => tracing::warn!(server = %domain, "no XEP-0215 answer: {e}"),
            }
        }
        let fallback: Vec<StunServer> = fallback
            .iter()
            .filter_map(|s| StunServer::configured(s).ok())
            .collect();
        let servers = stun_servers(
            offers.iter().map(|(d, s)| (d.as_str(), s.as_slice())),
            &fallback,
        );
        let local: SocketAddr = ([0, 0, 0, 0], 0).into();
        let report = probe(&servers, local, &ProbeConfig::default()).await;
        if let Ok(v) = serde_json::to_value(&report) {
            let _ = out.send(v).await;
        }
    });
}
