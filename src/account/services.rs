//! Asking the account's server which STUN/TURN services it offers (XEP-0215), the start of
//! reflection: the answer carries short-lived TURN credentials.

use std::time::Duration;

use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::iq::Iq;
use xmpp_ext::extdisco::{self, ExternalService};

use super::Session;

/// Why the services query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServicesError {
    /// The server answered with an error (it may not support XEP-0215).
    #[error(
        "{server} refused the external services query ({condition}); it may not offer STUN/TURN, configure fallback STUN servers"
    )]
    Refused {
        /// The server's domain.
        server: String,
        /// The stanza error condition.
        condition: String,
    },
    /// The answer did not parse.
    #[error("{server} sent a malformed external services answer: {reason}")]
    Malformed {
        /// The server's domain.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// No answer in time, or the stream went away.
    #[error("{server} did not answer the external services query: {reason}")]
    NoAnswer {
        /// The server's domain.
        server: String,
        /// What happened.
        reason: String,
    },
}

impl Session {
    /// The STUN/TURN services the account's server announces (XEP-0215 `services` query).
    pub async fn external_services(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<ExternalService>, ServicesError> {
        let server = self.domain();
        let to: Jid = server.parse().map_err(|e| ServicesError::Malformed {
            server: server.clone(),
            reason: format!("{e}"),
        })?;
        match self.iq(services_iq(to), timeout).await {
            Ok(Iq::Result {
                payload: Some(payload),
                ..
            }) => extdisco::parse_response(&payload).map_err(|e| ServicesError::Malformed {
                server,
                reason: e.to_string(),
            }),
            Ok(Iq::Result { payload: None, .. }) => Err(ServicesError::Malformed {
                server,
                reason: "empty result".into(),
            }),
            Ok(Iq::Error { error, .. }) => Err(ServicesError::Refused {
                server,
                condition: format!("{:?}", error.defined_condition),
            }),
            Ok(other) => Err(ServicesError::Malformed {
                server,
                reason: format!("not an answer: {other:?}"),
            }),
            Err(e) => Err(ServicesError::NoAnswer {
                server,
                reason: e.to_string(),
            }),
        }
    }

    /// The domain of the account's server.
    pub fn domain(&self) -> String {
        let j = &self.info().bound_jid;
        let bare = j.split('/').next().unwrap_or(j);
        bare.split('@').nth(1).unwrap_or(bare).to_string()
    }
}

impl super::AccountHandle {
    /// The STUN/TURN services this running account's server announces (XEP-0215), for the
    /// daemon's network check and its links.
    pub async fn external_services(
        &self,
        timeout: Duration,
    ) -> Result<Vec<ExternalService>, String> {
        let to: Jid = self
            .jid()
            .domain()
            .as_str()
            .parse()
            .map_err(|e| format!("{e}"))?;
        match self.iq(services_iq(to), timeout).await {
            Ok(Iq::Result {
                payload: Some(p), ..
            }) => extdisco::parse_response(&p).map_err(|e| e.to_string()),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The XEP-0215 `services` query to the server `to` (the id is set when it is sent).
fn services_iq(to: Jid) -> Iq {
    Iq::Get {
        from: None,
        to: Some(to),
        id: String::new(),
        payload: extdisco::services_request(None),
    }
}
