//! XMPP accounts: logging in with tokio-xmpp over TLS that trusts only what the user configured,
//! with a deadline and errors a person can act on (tokio-xmpp alone retries forever and never
//! says why). See `docs/architecture.md`.

mod connector;
mod error;
mod services;
mod session;
mod tls;

pub use connector::{Connector, Target, TlsMode};
pub use error::LoginError;
pub use services::ServicesError;
pub use session::{AccountConfig, Session, SessionInfo};
