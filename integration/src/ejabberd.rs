//! ejabberd 23.01 for the lab's `beta.lab`, started from a harness (not systemd) with its own
//! config folder: its own STUN/TURN listener announced through XEP-0215 (`mod_stun_disco`), shared
//! roster groups for mutual friends, accounts made through its HTTP admin API on the namespace's
//! loopback (each `ejabberdctl` call would start an Erlang VM), and Debian's throttles switched off.

use std::path::Path;
use std::time::Duration;

use nix::unistd::User;

use crate::error::{LabError, Result};
use crate::netns::Netns;
use crate::pki::ServerCert;
use crate::process::{self, ServerProcess};
use crate::prosody::chown_tree;
use crate::topology::{BETA, EJABBERD_IP, STUN_PORT};

/// The admin API's port, on the public namespace's loopback only.
const API_PORT: u16 = 5280;

/// What ejabberd needs to know to be started.
pub struct EjabberdConfig<'a> {
    /// The folder for its config, spool and logs.
    pub dir: &'a Path,
    /// Its certificate (chain and key in one file).
    pub cert: &'a ServerCert,
    /// The CA it trusts for federation.
    pub ca_file: &'a Path,
    /// The secret behind its TURN credentials.
    pub turn_secret: &'a str,
}

/// Writes the config, starts ejabberd and waits until it accepts clients and admin calls.
pub fn start(ns: &Netns, cfg: &EjabberdConfig<'_>) -> Result<ServerProcess> {
    let ip = EJABBERD_IP.to_string();
    for port in [5222, 5223, 5269] {
        process::ensure_free(ns, "ejabberd", false, &ip, port)?;
    }
    process::ensure_free(ns, "ejabberd", true, &ip, STUN_PORT)?;
    process::ensure_free(ns, "ejabberd", false, &ip, STUN_PORT)?;
    process::ensure_free(ns, "ejabberd", false, "127.0.0.1", API_PORT)?;
    let (conf, spool, logs) = (
        cfg.dir.join("conf"),
        cfg.dir.join("spool"),
        cfg.dir.join("logs"),
    );
    for d in [&conf, &spool, &logs] {
        std::fs::create_dir_all(d).map_err(LabError::io(format!("create {}", d.display())))?;
    }
    let pem = conf.join("server.pem");
    std::fs::copy(&cfg.cert.combined, &pem).map_err(LabError::io("copy ejabberd's certificate"))?;
    let ca = conf.join("ca.pem");
    std::fs::copy(cfg.ca_file, &ca).map_err(LabError::io("copy the lab CA for ejabberd"))?;
    write(
        &conf.join("ejabberd.yml"),
        &config_yml(&pem, &ca, cfg.turn_secret),
    )?;
    write(
        &conf.join("inetrc"),
        "{lookup,[\"file\",\"native\"]}.\n{hosts_file, \"/etc/hosts\"}.\n",
    )?;
    write(
        &conf.join("ejabberdctl.cfg"),
        // A fixed distribution port on loopback: no epmd daemon is started or left behind.
        "ERLANG_NODE=ejabberd@localhost\nERL_DIST_PORT=5210\nINET_DIST_INTERFACE=127.0.0.1\n\
         ERL_OPTIONS=\"-setcookie chamberlab\"\n",
    )?;
    let user = User::from_name("ejabberd")
        .ok()
        .flatten()
        .ok_or(LabError::MissingProgram {
            program: "ejabberdctl",
            package: "ejabberd",
        })?;
    chown_tree(cfg.dir, user.uid, user.gid)?;
    let args = [
        "--config-dir",
        &*conf.to_string_lossy(),
        "--spool",
        &*spool.to_string_lossy(),
        "--logs",
        &*logs.to_string_lossy(),
        "foreground",
    ]
    .map(str::to_string);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = cfg.dir.join("console.log");
    let mut proc = ServerProcess::spawn("ejabberd", ns, "ejabberdctl", &args, &[], &log)?;
    proc.wait_until(Duration::from_secs(60), || {
        process::listening(ns, false, &ip, 5222)
            && process::listening(ns, false, "127.0.0.1", API_PORT)
    })?;
    // The admin commands are registered a moment after the listeners open.
    proc.wait_until(Duration::from_secs(20), || {
        api(ns, "status", serde_json::json!({})).is_ok()
    })?;
    Ok(proc)
}

/// Creates accounts and makes `friends` (bare JIDs on any server) mutual contacts with
/// subscription `both`: local ones through a shared roster group, remote ones (across the
/// federation) as roster items, because ejabberd's shared roster groups keep only local users.
pub fn provision(ns: &Netns, accounts: &[(String, String)], friends: &[String]) -> Result<()> {
    let mut calls = Vec::new();
    for (user, password) in accounts {
        calls.push((
            "register",
            serde_json::json!({"user": user, "host": BETA, "password": password}),
        ));
    }
    calls.push((
        "srg_create",
        serde_json::json!({"group": "friends", "host": BETA, "label": "Friends",
                           "description": "chamber lab friends", "display": ["friends"]}),
    ));
    let mut split = Vec::new();
    for jid in friends {
        let (user, host) = jid
            .split_once('@')
            .ok_or_else(|| LabError::Spec(format!("not a bare JID: {jid}")))?;
        split.push((user, host));
    }
    for (user, host) in split.iter().filter(|(_, h)| *h == BETA) {
        calls.push((
            "srg_user_add",
            serde_json::json!({"user": user, "host": host, "group": "friends", "grouphost": BETA}),
        ));
        for (ruser, rhost) in split.iter().filter(|(_, h)| *h != BETA) {
            calls.push((
                "add_rosteritem",
                serde_json::json!({"localuser": user, "localhost": BETA, "user": ruser, "host": rhost,
                                   "nick": ruser, "group": "friends", "subs": "both"}),
            ));
        }
    }
    let name = ns.name().to_string();
    ns.run(move || {
        calls
            .into_iter()
            .try_for_each(|(call, body)| post(&name, call, body))
    })?
}

/// One admin API call, made from inside the namespace.
fn api(ns: &Netns, call: &'static str, body: serde_json::Value) -> Result<()> {
    let name = ns.name().to_string();
    ns.run(move || post(&name, call, body))?
}

/// Must run on a thread inside the namespace.
fn post(_ns: &str, call: &str, body: serde_json::Value) -> Result<()> {
    let url = format!("http://127.0.0.1:{API_PORT}/api/{call}");
    let fail = |reason: String| LabError::Admin {
        what: "ejabberd",
        call: call.to_string(),
        reason,
    };
    let mut resp = ureq::post(&url)
        .send_json(&body)
        .map_err(|e| fail(e.to_string()))?;
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    // Commands answer 0 for success, or a JSON status object.
    if text.trim() == "1" || text.contains("\"error\"") {
        return Err(fail(text));
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(LabError::io(format!("write {}", path.display())))
}

fn config_yml(pem: &Path, ca: &Path, secret: &str) -> String {
    format!(
        r#"# Generated by chamber-lab; deleted with the lab.
hosts: ["{BETA}"]
loglevel: info
certfiles: ["{pem}"]
ca_file: "{ca}"
define_macro: {{}}
listen:
  - port: 5222
    ip: "{EJABBERD_IP}"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 256
  - port: 5223
    ip: "{EJABBERD_IP}"
    module: ejabberd_c2s
    tls: true
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 256
  - port: 5269
    ip: "{EJABBERD_IP}"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
  - port: {API_PORT}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
  - port: {STUN_PORT}
    ip: "{EJABBERD_IP}"
    transport: udp
    module: ejabberd_stun
    use_turn: true
    turn_ipv4_address: "{EJABBERD_IP}"
    turn_blacklist: []
  # TURN over TCP too: the only way out for a site that blocks UDP.
  - port: {STUN_PORT}
    ip: "{EJABBERD_IP}"
    transport: tcp
    module: ejabberd_stun
    use_turn: true
    turn_ipv4_address: "{EJABBERD_IP}"
    turn_blacklist: []
s2s_use_starttls: required
s2s_dns_timeout: 2
s2s_dns_retries: 1
s2s_max_retry_delay: 5
auth_method: internal
auth_password_format: scram
shaper:
  normal: 1000000
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  local:
    allow: all
api_permissions:
  "lab admin on loopback":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what: "*"
modules:
  mod_disco: {{}}
  mod_caps: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_shared_roster: {{}}
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_http_api: {{}}
  mod_admin_extra: {{}}
  mod_stun_disco:
    secret: "{secret}"
    credentials_lifetime: 12h
"#,
        pem = pem.display(),
        ca = ca.display(),
    )
}
