//! Why a login failed, in words that say what to do.

/// Why logging into an XMPP account failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The server refused the password.
    #[error(
        "{jid}: the server refused the password ({condition}); check it with `chamber account add {jid}`"
    )]
    WrongPassword {
        /// The account.
        jid: String,
        /// The SASL condition the server gave.
        condition: String,
    },
    /// The server's certificate is not trusted or does not match its name.
    #[error(
        "{jid}: the server's TLS certificate was rejected ({reason}); if this server uses a private CA, \
         set `ca_file` for the account"
    )]
    UntrustedCertificate {
        /// The account.
        jid: String,
        /// What rustls said.
        reason: String,
    },
    /// No TCP connection could be made.
    #[error(
        "{jid}: cannot reach the server at {addr} ({reason}); check the network and the server address"
    )]
    Unreachable {
        /// The account.
        jid: String,
        /// Where we tried.
        addr: String,
        /// The socket error.
        reason: String,
    },
    /// The login did not finish in time.
    #[error("{jid}: no login within {secs} s ({last}); the server may be down or overloaded")]
    Timeout {
        /// The account.
        jid: String,
        /// The deadline.
        secs: u64,
        /// The last thing that went wrong, if anything.
        last: String,
    },
    /// The server offers no mechanism we accept.
    #[error("{jid}: the server offers no SASL mechanism chamber accepts (offered: {offered})")]
    NoMechanism {
        /// The account.
        jid: String,
        /// What it offered.
        offered: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// Anything else in the XMPP stream.
    #[error("{jid}: XMPP error: {reason}")]
    Protocol {
        /// The account.
        jid: String,
        /// The error.
        reason: String,
    },
}

impl LoginError {
    /// Whether retrying soon is pointless: the server refused us, or our settings are wrong.
    /// Waiting (a network coming back, a server restarting) fixes the other kinds.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            LoginError::WrongPassword { .. }
                | LoginError::UntrustedCertificate { .. }
                | LoginError::NoMechanism { .. }
                | LoginError::Config(_)
        )
    }
}
