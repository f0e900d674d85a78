//! One authenticated, not yet bound XMPP stream: TLS through our [`Connector`], SASL with the
//! best mechanism the server offers, the post-SASL stream restart. tokio-xmpp's own version of
//! this (`client_auth`) is private and turns every failure into a retry; ours says what failed
//! ([`LoginError`]), so the reconnect loop can tell a refused password from a dead network.

use std::borrow::Cow;
use std::collections::BTreeSet;

use sasl::common::Credentials;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{FallibleStreamElement, StreamHeader, Timeouts};

use super::LoginError;
use super::connector::{ConnectFailure, Connector};

/// The mechanisms tokio-xmpp tries, in its order; the first the server offers is the one used.
const MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

/// Connects, authenticates and restarts the stream; returns it (ready for resource binding or
/// XEP-0198 resumption) with the SASL mechanism used.
pub(crate) async fn authenticate(
    connector: &Connector,
    jid: &BareJid,
    password: &str,
    timeouts: Timeouts,
) -> Result<(Connection, String), LoginError> {
    let j = jid.to_string();
    let protocol = |reason: String| LoginError::Protocol {
        jid: j.clone(),
        reason,
    };
    let (stream, binding) = connector
        .connect(&Jid::from(jid.clone()), ns::JABBER_CLIENT, timeouts)
        .await
        .map_err(|e| connect_error(&j, connector, e))?;
    let (features, stream) = stream
        .recv_features()
        .await
        .map_err(|e| protocol(e.to_string()))?;
    let offered: BTreeSet<String> = features.sasl_mechanisms.clone();
    let Some(mechanism) = MECHANISMS.iter().find(|m| offered.contains(**m)) else {
        return Err(LoginError::NoMechanism {
            jid: j,
            offered: offered.into_iter().collect::<Vec<_>>().join(" "),
        });
    };
    let node = jid.node().map(|n| n.to_string()).unwrap_or_default();
    let creds = Credentials::default()
        .with_username(node)
        .with_password(password)
        .with_channel_binding(binding);
    let only: BTreeSet<String> = [mechanism.to_string()].into();
    let restarted = match tokio_xmpp::client_login(stream, only, creds).await {
        Ok(s) => s,
        Err(tokio_xmpp::Error::Auth(tokio_xmpp::error::AuthError::Fail(condition))) => {
            return Err(LoginError::WrongPassword {
                jid: j,
                condition: format!("{condition:?}"),
            });
        }
        Err(e) => return Err(protocol(e.to_string())),
    };
    let header = StreamHeader {
        to: Some(Cow::Borrowed(jid.domain().as_str())),
        from: None,
        id: None,
    };
    let pending = restarted
        .send_header(header)
        .await
        .map_err(|e| protocol(format!("stream restart: {e}")))?;
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|e| protocol(format!("stream restart: {e}")))?;
    let connection = Connection {
        stream: stream.box_stream(),
        features,
        identity: Jid::from(jid.clone()),
    };
    Ok((connection, mechanism.to_string()))
}

/// The error for a failed connect, from what the connector saw.
pub(crate) fn connect_error(jid: &str, connector: &Connector, e: tokio_xmpp::Error) -> LoginError {
    match connector.take_failure() {
        Some(ConnectFailure::Tls(reason)) => LoginError::UntrustedCertificate {
            jid: jid.into(),
            reason,
        },
        Some(ConnectFailure::Tcp(reason)) => LoginError::Unreachable {
            jid: jid.into(),
            addr: connector.target().to_string(),
            reason,
        },
        Some(ConnectFailure::Stream(reason)) => LoginError::Protocol {
            jid: jid.into(),
            reason,
        },
        None => LoginError::Protocol {
            jid: jid.into(),
            reason: e.to_string(),
        },
    }
}
