//! Why a reflection step failed. Every message says what happened and what the user can do.

use std::net::SocketAddr;

/// A failed STUN transaction, server lookup or socket operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReflectError {
    /// No usable answer came back after every retransmission.
    #[error(
        "no answer from STUN server {server} after {transmissions} requests over {waited_ms} ms{}: \
         UDP may be blocked on this network, or the server is down; \
         check the firewall or try another STUN server",
        last_ignored.as_ref().map(|r| format!(" (last reply ignored: {r})")).unwrap_or_default()
    )]
    Timeout {
        /// The server asked.
        server: SocketAddr,
        /// How many requests were sent.
        transmissions: u32,
        /// How long the client waited in total.
        waited_ms: u64,
        /// Why the last reply that did arrive for this transaction was not used, if any did.
        last_ignored: Option<String>,
    },
    /// The server answered with a STUN error response.
    #[error(
        "STUN server {server} refused the request: error {code} {reason}; \
         the server may not support this request, try another STUN server"
    )]
    ErrorResponse {
        /// The server that answered.
        server: SocketAddr,
        /// The STUN error code (RFC 8489 §14.8).
        code: u16,
        /// The server's reason phrase.
        reason: String,
    },
    /// The request could not be sent.
    #[error("cannot send a STUN request to {server}: {source}; check the network connection")]
    Send {
        /// The destination.
        server: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The socket kept failing while waiting for answers.
    #[error("the STUN socket failed while receiving: {source}; check the network connection")]
    Receive {
        /// The last socket error.
        source: std::io::Error,
    },
    /// A local socket could not be bound.
    #[error("cannot bind a UDP socket to {addr}: {source}; choose another local address or port 0")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The server's name did not resolve to a usable address.
    #[error("cannot resolve STUN server {host}:{port}: {reason}; check its name and DNS")]
    Resolve {
        /// The host name as configured or offered.
        host: String,
        /// The port.
        port: u16,
        /// What went wrong.
        reason: String,
    },
    /// A configured server is not written as `host` or `host:port`.
    #[error("invalid STUN server `{spec}`: {reason}; write it as host or host:port")]
    InvalidServer {
        /// What was configured.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// stun-rs refused to encode a request (a bug in this module, never the network's fault).
    #[error("cannot encode a STUN request: {reason}; this is a bug in chamber, please report it")]
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// The overall deadline passed before this step could run.
    #[error("the network check ran out of time before this step; raise the deadline")]
    DeadlinePassed,
}
