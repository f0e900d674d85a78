//! A wrong password and an untrusted certificate give a clear error within the login deadline:
//! from `chamber account add` (which logs in once before storing anything), on Prosody and on
//! ejabberd, and from a running `chamber up`, whose status then names the problem.

mod common;
mod node_support;

use std::time::{Duration, Instant};

use chamber::account::{LinkState, TlsMode};
use chamber_lab::topology::{ALPHA, BETA};
use chamber_lab::{Lab, LabSpec, NatKind, SiteSpec};
use node_support::{NodeHome, server_addr};

/// The default login deadline.
const DEADLINE: Duration = Duration::from_secs(15);

#[test]
fn cli_login_errors_are_clear_and_quick() {
    if !common::lab_available() {
        return;
    }
    let started = Instant::now();
    let mut spec = LabSpec::with_sites(vec![SiteSpec::new("home", NatKind::PortRestrictedCone)]);
    spec.coturn = false;
    let lab = Lab::up(spec).expect("lab up");
    let site = lab.site("home").expect("site");
    node_support::chamber_bin();
    eprintln!("lab up in {} ms", started.elapsed().as_millis());
    let home = NodeHome::new(&lab, "errors");
    let ca = lab.ca_file().to_string_lossy().to_string();

    for (domain, tls) in [(ALPHA, TlsMode::StartTls), (BETA, TlsMode::Direct)] {
        let jid = lab.account(1, domain).jid;
        let server = server_addr(domain, tls);
        let mut base = vec![
            "account",
            "add",
            jid.as_str(),
            "--server",
            &server,
            "--password-stdin",
        ];
        if tls == TlsMode::Direct {
            base.push("--direct-tls");
        }

        // Wrong password, trusted CA.
        let mut args = base.clone();
        args.extend(["--ca-file", &ca]);
        let t = Instant::now();
        let out = home.run(&site.host, &args, "not-the-password\n");
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{domain} wrong password ({} ms): {err}", took.as_millis());
        assert!(!out.status.success());
        assert!(err.contains("refused the password"), "{err}");
        assert!(
            err.contains("chamber account add"),
            "says what to do: {err}"
        );
        assert!(took < DEADLINE, "{took:?}");

        // Right password, but the lab CA is not trusted (system roots only).
        let password = format!("{}\n", lab.account(1, domain).password);
        let t = Instant::now();
        let out = home.run(&site.host, &base, &password);
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "{domain} untrusted certificate ({} ms): {err}",
            took.as_millis()
        );
        assert!(!out.status.success());
        assert!(err.contains("TLS certificate was rejected"), "{err}");
        assert!(err.contains("ca_file"), "says what to do: {err}");
        assert!(took < DEADLINE, "{took:?}");
    }
    // Nothing was stored by the failed attempts.
    let list = home.run(&site.host, &["account", "list", "--json"], "");
    let listed: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON list");
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");

    // A daemon whose stored password went stale says so in its status.
    home.add_account(&site.host, &lab, 1, ALPHA, TlsMode::StartTls);
    let config = std::fs::read_to_string(&home.config).expect("config");
    assert!(
        !config.contains(&lab.account(1, ALPHA).password),
        "password in the config file"
    );
    let secrets = home.dir.join("secrets");
    let file = std::fs::read_dir(&secrets)
        .expect("secrets folder")
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "secret"))
        .expect("a secret file")
        .path();
    // Overwrite the stored password (keeping the 0600 mode) as if it had changed on the server.
    std::fs::write(&file, "stale-password").expect("overwrite");
    let t = Instant::now();
    let daemon = home.up(&site.host);
    let status = home.wait_status(DEADLINE, |s| {
        s.accounts.first().is_some_and(|a| a.last_error.is_some())
    });
    let Some(status) = status else {
        panic!(
            "no error in status within {DEADLINE:?}:\n{}",
            daemon.tail(30)
        );
    };
    let a = &status.accounts[0];
    eprintln!(
        "daemon after {} ms: {:?}: {:?}",
        t.elapsed().as_millis(),
        a.state,
        a.last_error
    );
    assert_eq!(a.state, LinkState::Retrying);
    assert!(a.error_is_permanent);
    assert!(
        a.last_error
            .as_deref()
            .unwrap_or("")
            .contains("refused the password")
    );
    assert_eq!(status.keystore.kind, "file");
    eprintln!("total {} ms", started.elapsed().as_millis());
}
