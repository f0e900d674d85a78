//! XMPP accounts: logging in with tokio-xmpp over TLS that trusts only what the user configured,
//! with a deadline and errors a person can act on (tokio-xmpp alone retries forever and never
//! says why), and keeping a session up for the daemon: reconnects with backoff and jitter,
//! XEP-0198 resumption, XEP-0199 keepalives, a clean close. See `docs/architecture.md`.
//!
//! - [`Session`]: a one-off login (for `account add` and `netcheck`).
//! - [`AccountHandle`]: a long-lived account in its own task, for the daemon.
#![warn(missing_docs)]

mod actor;
mod auth;
mod backoff;
mod connector;
mod error;
mod iq;
mod link;
mod services;
mod session;
mod status;
mod tls;

pub use actor::{AccountEvent, AccountHandle};
pub use backoff::Backoff;
pub use connector::{Connector, Target, TlsMode};
pub use error::LoginError;
pub use iq::IqError;
pub use services::ServicesError;
pub use session::{AccountConfig, Session, SessionInfo};
pub(crate) use status::unix_ms;
pub use status::{AccountStatus, LinkOptions, LinkState};
