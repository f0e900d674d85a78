//! Helpers shared by the lab tests: deciding whether a lab can run here, running async code
//! inside a site's namespace, and account settings for the lab's servers.
#![allow(dead_code)]

use std::future::Future;

use chamber::account::{AccountConfig, TlsMode};
use chamber_lab::topology::{ALPHA, BETA, EJABBERD_IP, PROSODY_IP};
use chamber_lab::{Lab, LabError, Netns};

/// Whether this machine can run a lab. Outside CI, a machine without root or the packages skips
/// the lab tests with a message; in CI (`CI=true`) that is a failure, never a silent pass.
pub fn lab_available() -> bool {
    match Lab::preflight() {
        Ok(()) => true,
        Err(e @ (LabError::NotRoot | LabError::MissingProgram { .. })) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the lab tests must run in CI: {e}");
            }
            eprintln!("SKIPPED (not a lab machine): {e}");
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs an async block on a fresh runtime inside `ns`.
pub fn block_on_in<F, Fut, T>(ns: &Netns, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(f())
    })
    .expect("enter the namespace")
}

/// The c2s address of the server of `domain`.
pub fn server_addr(domain: &str, tls: TlsMode) -> String {
    let ip = if domain == ALPHA {
        PROSODY_IP
    } else {
        EJABBERD_IP
    };
    assert!(
        domain == ALPHA || domain == BETA,
        "unknown lab domain {domain}"
    );
    let port = if tls == TlsMode::Direct { 5223 } else { 5222 };
    format!("{ip}:{port}")
}

/// Settings for account `userK@domain`, trusting the lab CA.
pub fn account(lab: &Lab, k: u32, domain: &str, tls: TlsMode) -> AccountConfig {
    let a = lab.account(k, domain);
    let mut cfg = AccountConfig::new(a.jid, a.password);
    cfg.server = Some(server_addr(domain, tls));
    cfg.tls = tls;
    cfg.ca_file = Some(lab.ca_file());
    cfg
}
