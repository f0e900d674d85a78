//! `chamber netcheck`: log into every account, ask each server for STUN/TURN (XEP-0215), then
//! probe the STUN servers (the offered ones, else the configured fallbacks) from one place and
//! classify the NAT (RFC 5780). TURN passwords are never shown, only whether there are any.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use xmpp_ext::extdisco::ExternalService;

use super::{CliError, load, print_json};
use crate::account::{Session, SessionInfo};
use crate::keystore::Keystore;
use crate::reflect::{NetReport, ProbeConfig, StunServer, probe, stun_servers};

/// What `netcheck --json` prints.
#[derive(Debug, serde::Serialize)]
pub struct NetcheckReport {
    /// Each account: login and the services its server offers.
    pub accounts: Vec<AccountCheck>,
    /// STUN results per server and the NAT class.
    pub report: NetReport,
    /// NAT class, as in `report`.
    pub class: String,
}

/// One account's part.
#[derive(Debug, serde::Serialize)]
pub struct AccountCheck {
    /// The account.
    pub jid: String,
    /// The XMPP server's domain.
    pub server: String,
    /// The login, if it worked.
    pub login: Option<SessionInfo>,
    /// Why it did not.
    pub error: Option<String>,
    /// The services offered (XEP-0215).
    pub services: Vec<ServiceView>,
    /// How long the XEP-0215 query took.
    pub services_ms: Option<u64>,
}

/// An offered service, without secrets.
#[derive(Debug, serde::Serialize)]
pub struct ServiceView {
    /// `stun`, `turn`, ...
    pub kind: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// Whether short-lived credentials came with it.
    pub credentials: bool,
    /// When they expire (Unix seconds).
    pub expires: Option<i64>,
}

impl From<&ExternalService> for ServiceView {
    fn from(s: &ExternalService) -> ServiceView {
        ServiceView {
            kind: format!("{:?}", s.kind).to_lowercase(),
            transport: format!("{:?}", s.transport).to_lowercase(),
            host: s.host.clone(),
            port: s.port_or_default(),
            credentials: s.username.is_some() && s.password.is_some(),
            expires: s.expires_unix(),
        }
    }
}

pub(super) async fn run(config_path: &Path, json: bool, extra: &[String]) -> Result<(), CliError> {
    let (config, paths) = load(config_path)?;
    let mut fallback = Vec::new();
    for s in config.fallback_stun.iter().chain(extra) {
        fallback.push(
            StunServer::configured(s)
                .map_err(|e| CliError::Usage(format!("STUN server `{s}`: {e}")))?,
        );
    }
    if config.accounts.is_empty() && fallback.is_empty() {
        return Err(CliError::Usage(format!(
            "nothing to check: no account in {} and no --stun server; add one with `chamber account add JID`",
            config_path.display()
        )));
    }
    let keystore = Keystore::open(&config.keystore, paths.secrets_dir)?;
    let mut logins = Vec::new();
    for a in &config.accounts {
        logins.push((a.jid.clone(), a.to_login(&keystore.password(&a.jid)?)));
    }
    let checks = futures::future::join_all(logins.into_iter().map(|(jid, cfg)| async move {
        let server = jid.split('@').nth(1).unwrap_or_default().to_string();
        let mut check = AccountCheck {
            jid,
            server,
            login: None,
            error: None,
            services: Vec::new(),
            services_ms: None,
        };
        let offered = match Session::login(&cfg).await {
            Ok(mut s) => {
                check.login = Some(s.info().clone());
                let start = Instant::now();
                let r = s.external_services(Duration::from_secs(8)).await;
                check.services_ms = Some(start.elapsed().as_millis() as u64);
                s.close().await;
                match r {
                    Ok(list) => list,
                    Err(e) => {
                        check.error = Some(e.to_string());
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                check.error = Some(e.to_string());
                Vec::new()
            }
        };
        check.services = offered.iter().map(ServiceView::from).collect();
        (check, offered)
    }))
    .await;
    let servers = stun_servers(
        checks
            .iter()
            .map(|(c, offered)| (c.server.as_str(), offered.as_slice())),
        &fallback,
    );
    let local: SocketAddr = ([0, 0, 0, 0], 0).into();
    let report = probe(&servers, local, &ProbeConfig::default()).await;
    let out = NetcheckReport {
        class: report.class.to_string(),
        accounts: checks.into_iter().map(|(c, _)| c).collect(),
        report,
    };
    if json {
        return print_json(&out);
    }
    for c in &out.accounts {
        match (&c.login, &c.error) {
            (Some(l), _) => println!(
                "{} on {}: logged in ({}, {} ms)",
                c.jid, c.server, l.mechanism, l.login_ms
            ),
            (None, Some(e)) => println!("{}: {e}", c.jid),
            (None, None) => {}
        }
        for s in &c.services {
            let port = s.port.map(|p| format!(":{p}")).unwrap_or_default();
            let creds = if s.credentials {
                ", with credentials"
            } else {
                ""
            };
            println!(
                "  offers {} {}{port}/{}{creds}",
                s.kind, s.host, s.transport
            );
        }
        if c.login.is_some() && c.services.is_empty() {
            println!("  offers no STUN/TURN (XEP-0215)");
        }
    }
    print!("{}", out.report);
    Ok(())
}
