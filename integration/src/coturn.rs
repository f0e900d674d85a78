//! coturn as the lab's STUN/TURN server: two addresses so RFC 5780 behaviour discovery works
//! (it answers on port + 1 as the alternate port), TURN credentials from a shared secret that
//! Prosody hands out through XEP-0215.

use std::path::Path;
use std::time::Duration;

use crate::error::Result;
use crate::netns::Netns;
use crate::process::{self, ServerProcess};
use crate::topology::{ALPHA, STUN_ALTERNATE, STUN_PORT, STUN_PRIMARY};

/// Starts coturn in `ns` and waits until both addresses answer.
pub fn start(ns: &Netns, dir: &Path, secret: &str) -> Result<ServerProcess> {
    let (a, b) = (STUN_PRIMARY.to_string(), STUN_ALTERNATE.to_string());
    for ip in [&a, &b] {
        process::ensure_free(ns, "coturn", true, ip, STUN_PORT)?;
        process::ensure_free(ns, "coturn", false, ip, STUN_PORT)?;
    }
    let log = dir.join("turnserver.log");
    let pid = dir.join("turnserver.pid");
    let port = STUN_PORT.to_string();
    let args = [
        "-n", // no config file: everything is on this command line
        "--listening-ip",
        &a,
        "--listening-ip",
        &b,
        "--relay-ip",
        &a,
        "--listening-port",
        &port,
        "--min-port",
        "49152",
        "--max-port",
        "65535",
        "--use-auth-secret",
        "--static-auth-secret",
        secret,
        "--realm",
        ALPHA,
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-multicast-peers",
        // Private peers are refused (403), as coturn's own guide recommends for a public
        // server. Without this, ICE checks from a relay towards a friend's private host
        // candidate fail to send here (the lab's internet has no default route), and coturn
        // closes an allocation whose relay socket had a send error: every relay pair died.
        "--denied-peer-ip",
        "10.0.0.0-10.255.255.255",
        "--denied-peer-ip",
        "172.16.0.0-172.31.255.255",
        "--denied-peer-ip",
        "192.168.0.0-192.168.255.255",
        "--verbose", // the log says why a permission or relay was refused
        "--simple-log",
        "--log-file",
        "stdout",
        "--pidfile",
        &pid.to_string_lossy(),
    ];
    let mut proc = ServerProcess::spawn("coturn", ns, "turnserver", &args, &[], &log)?;
    // UDP on both addresses, and TCP (TURN over TCP, for sites that block UDP).
    proc.wait_until(Duration::from_secs(15), || {
        process::listening(ns, true, &a, STUN_PORT)
            && process::listening(ns, true, &b, STUN_PORT)
            && process::listening(ns, false, &a, STUN_PORT)
    })?;
    Ok(proc)
}
