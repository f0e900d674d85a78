//! `chamber-lab demo`: the README's first command. A lab of friends behind every kind of NAT logs
//! into both XMPP servers, and each friend shows what it learns of its network: the STUN/TURN
//! services its servers announce (XEP-0215) and its public address and NAT class (RFC 5780).
//! Later issues extend it until the friends form a ring, chat and share a file.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chamber::account::{AccountConfig, Session, SessionInfo, TlsMode};
use chamber::reflect::{NetReport, ProbeConfig, probe, stun_servers};
use chamber_lab::topology::{ALPHA, BETA, EJABBERD_IP, PROSODY_IP};
use chamber_lab::{Lab, LabSpec, Site};
use xmpp_ext::extdisco::{ExternalService, ServiceKind};

#[path = "demo_apps.rs"]
mod apps;
#[path = "demo_daemons.rs"]
mod daemons;

/// What one friend learnt.
#[derive(serde::Serialize)]
struct FriendReport {
    site: String,
    nat: String,
    logins: Vec<SessionInfo>,
    services: Vec<String>,
    network: NetReport,
}

/// Brings the lab up, runs every friend, prints the result, and tears the lab down.
pub fn run(json: bool) -> anyhow::Result<()> {
    eprintln!("chamber demo: building a lab of friends behind NATs (Prosody, ejabberd, coturn)…");
    let lab = Lab::up(LabSpec::one_of_each()).context("the lab did not come up")?;
    eprintln!(
        "lab {} is up: one friend per site, each with an account on both servers",
        lab.id()
    );
    let mut reports = Vec::new();
    for (i, site) in lab.sites().iter().enumerate() {
        let k = i as u32 + 1;
        let accounts: Vec<AccountConfig> =
            [ALPHA, BETA].iter().map(|d| account(&lab, k, d)).collect();
        reports.push(
            friend(site, accounts).with_context(|| format!("friend at site {}", site.spec.name))?,
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print_table(&reports);
    }
    let nodes = daemons::run(&lab, json)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    }
    lab.down();
    eprintln!("lab torn down");
    Ok(())
}

fn account(lab: &Lab, k: u32, domain: &str) -> AccountConfig {
    let a = lab.account(k, domain);
    let mut cfg = AccountConfig::new(a.jid, a.password);
    let ip = if domain == ALPHA {
        PROSODY_IP
    } else {
        EJABBERD_IP
    };
    cfg.server = Some(format!("{ip}:5222"));
    cfg.tls = TlsMode::StartTls;
    cfg.ca_file = Some(lab.ca_file());
    cfg
}

/// Runs one friend inside its site's namespace: log in everywhere, ask for services, probe.
fn friend(site: &Site, accounts: Vec<AccountConfig>) -> anyhow::Result<FriendReport> {
    let (name, nat) = (site.spec.name.clone(), site.spec.nat.to_string());
    site.host.run(move || -> anyhow::Result<FriendReport> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut logins = Vec::new();
            let mut offers: Vec<(String, Vec<ExternalService>)> = Vec::new();
            for cfg in &accounts {
                let mut s = Session::login(cfg).await?;
                logins.push(s.info().clone());
                let list = s.external_services(Duration::from_secs(5)).await?;
                offers.push((s.domain(), list));
                s.close().await;
            }
            let services = offers
                .iter()
                .flat_map(|(d, l)| l.iter().map(move |s| describe(d, s)))
                .collect();
            let servers = stun_servers(offers.iter().map(|(d, l)| (d.as_str(), l.as_slice())), &[]);
            let any: SocketAddr = "0.0.0.0:0".parse()?;
            let network = probe(&servers, any, &ProbeConfig::default()).await;
            Ok(FriendReport {
                site: name,
                nat,
                logins,
                services,
                network,
            })
        })
    })?
}

fn describe(domain: &str, s: &ExternalService) -> String {
    let kind = match &s.kind {
        ServiceKind::Stun => "stun",
        ServiceKind::Stuns => "stuns",
        ServiceKind::Turn => "turn",
        ServiceKind::Turns => "turns",
        ServiceKind::Other(o) => o,
    };
    let creds = if s.username.is_some() {
        " (with credentials)"
    } else {
        ""
    };
    format!(
        "{domain}: {kind} {}:{}{creds}",
        s.host,
        s.port_or_default().unwrap_or(0)
    )
}

fn print_table(reports: &[FriendReport]) {
    println!();
    for r in reports {
        println!("friend at site `{}` (router: {})", r.site, r.nat);
        for l in &r.logins {
            println!(
                "  logged in as {:<40} {} over {:?} TLS in {} ms",
                l.bound_jid, l.mechanism, l.tls, l.login_ms
            );
        }
        println!("  services announced: {}", r.services.join(", "));
        for s in &r.network.servers {
            let reflexive = s
                .reflexive
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into());
            println!(
                "  STUN {:<22} sees us as {:<22} mapping {:<28} filtering {:<28} → {}",
                s.server,
                reflexive,
                s.mapping.as_str(),
                s.filtering.as_str(),
                s.class.as_str()
            );
        }
        let public = r
            .network
            .reflexive
            .map(|a| a.to_string())
            .unwrap_or_else(|| "none (UDP blocked?)".into());
        println!(
            "  ⇒ public address {public}, NAT class: {}\n",
            r.network.class.as_str()
        );
    }
}
